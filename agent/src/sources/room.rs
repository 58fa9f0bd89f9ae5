//! Room in the datapath's tables, admitted before an apply rather than
//! discovered by one that fails half way: frontend ids (both families
//! share them) and backend slots (a table per family; a backend of weight
//! w takes w slots).

use crate::config::Frontend;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Room {
    pub frontends: u32,
    pub slots_v4: u32,
    pub slots_v6: u32,
}

fn slots(fe: &Frontend) -> u32 {
    fe.backends
        .iter()
        .fold(0u32, |n, b| n.saturating_add(b.weight))
}

impl Room {
    /// The tables' whole room, of the given sizes.
    pub fn of(frontends: u32, slots_per_family: u32) -> Self {
        Self {
            frontends,
            slots_v4: slots_per_family,
            slots_v6: slots_per_family,
        }
    }

    /// What is left once `fes` are in (none where they already overflow).
    pub fn after(mut self, fes: &[Frontend]) -> Self {
        self.frontends = self.frontends.saturating_sub(fes.len() as u32);
        for fe in fes {
            let left = self.slots_of(fe);
            *left = left.saturating_sub(slots(fe));
        }
        self
    }

    /// Takes the room `fes` need, all of it or none: what is short, if
    /// anything is.
    pub fn take(&mut self, fes: &[Frontend]) -> Result<(), String> {
        // A frontend's slots are counted in 16 bits.
        if let Some(fe) = fes.iter().find(|fe| slots(fe) > u32::from(u16::MAX)) {
            return Err(format!(
                "{}:{} has {} backend slots (weights summed): a frontend has at most {}",
                fe.addr,
                fe.port,
                slots(fe),
                u16::MAX
            ));
        }
        let need = Self::default().needs(fes);
        let mut short = Vec::new();
        if need.frontends > self.frontends {
            short.push(format!(
                "{} frontends, with room for {}",
                need.frontends, self.frontends
            ));
        }
        for (family, n, left) in [
            ("IPv4", need.slots_v4, self.slots_v4),
            ("IPv6", need.slots_v6, self.slots_v6),
        ] {
            if n > left {
                short.push(format!("{n} {family} backend slots, with room for {left}"));
            }
        }
        if !short.is_empty() {
            return Err(format!(
                "the datapath's tables are full: it needs {}",
                short.join(" and ")
            ));
        }
        *self = self.after(fes);
        Ok(())
    }

    /// `self` grown by what `fes` need.
    fn needs(mut self, fes: &[Frontend]) -> Self {
        self.frontends = self.frontends.saturating_add(fes.len() as u32);
        for fe in fes {
            let n = self.slots_of(fe);
            *n = n.saturating_add(slots(fe));
        }
        self
    }

    fn slots_of(&mut self, fe: &Frontend) -> &mut u32 {
        if fe.addr.is_ipv4() {
            &mut self.slots_v4
        } else {
            &mut self.slots_v6
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;

    fn fe(addr: &str, weights: &[u32]) -> Frontend {
        Frontend {
            policy: Default::default(),
            name: "t".into(),
            source: "t".into(),
            addr: addr.parse().unwrap(),
            port: 80,
            proto: 6,
            backends: weights
                .iter()
                .enumerate()
                .map(|(i, w)| Backend {
                    addr: format!("198.51.100.{}", i + 1).parse().unwrap(),
                    port: 80,
                    weight: *w,
                })
                .collect(),
        }
    }

    #[test]
    fn room_is_taken_whole_or_not_at_all_per_family() {
        let mut room = Room::of(3, 10);
        assert_eq!(room.take(&[fe("203.0.113.10", &[4, 4])]), Ok(()));
        let left = Room {
            frontends: 2,
            slots_v4: 2,
            slots_v6: 10,
        };
        assert_eq!(room, left);
        // Two frontends fit, their IPv4 slots do not: nothing is taken.
        let got = room.take(&[fe("203.0.113.11", &[1]), fe("203.0.113.12", &[2])]);
        assert_eq!(
            got,
            Err(
                "the datapath's tables are full: it needs 3 IPv4 backend slots, with room for 2"
                    .into()
            )
        );
        assert_eq!(room, left, "nothing taken");
        // IPv6 has a table of its own.
        assert_eq!(room.take(&[fe("2001:db8::10", &[10])]), Ok(()));
        let got = room.take(&[fe("203.0.113.11", &[]), fe("203.0.113.12", &[])]);
        assert_eq!(
            got,
            Err("the datapath's tables are full: it needs 2 frontends, with room for 1".into())
        );
    }

    #[test]
    fn a_frontend_beyond_its_own_slots_is_refused_whatever_the_room() {
        let mut room = Room::of(4, 1 << 20);
        let wide = fe("203.0.113.10", &[65_535, 1]);
        assert_eq!(
            room.take(&[wide]),
            Err("203.0.113.10:80 has 65536 backend slots (weights summed): a frontend has at most 65535".into())
        );
        assert_eq!(room, Room::of(4, 1 << 20), "nothing taken");
    }

    #[test]
    fn what_is_left_after_an_overflow_is_none() {
        let room = Room::of(1, 5).after(&[fe("203.0.113.10", &[9]), fe("2001:db8::1", &[])]);
        assert_eq!(
            room,
            Room {
                frontends: 0,
                slots_v4: 0,
                slots_v6: 5
            }
        );
    }
}

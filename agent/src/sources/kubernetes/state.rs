//! The last frontends known from the cluster, kept in a file so that an
//! agent started while the API server is away serves them, as the agent
//! before it did, until its watches have caught up.

use std::{fs, io::Write as _, path::Path};

use anyhow::{Context as _, Result};

use super::admission::Admission;
use crate::{config::Frontend, sources::room::Room};

/// The frontends of `path`; none where there is no such file yet.
pub fn load(path: &Path) -> Result<Vec<Frontend>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading the cluster state {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading the cluster state {}", path.display())),
    }
}

/// Replaces the file at once (written aside, then renamed): a crash leaves
/// the old state or the new, never half of one.
pub fn save(path: &Path, frontends: &[Frontend]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec(frontends)?)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// The frontends of a state file that this node may serve now: those
/// `admission` admits and `taken` leaves free, each object's whole or none
/// of it, in the order they were saved (oldest first), while `room` lasts;
/// a state kept by an agent with larger tables is fitted as the watches'
/// objects are. Returns them, and the objects left out with why.
pub fn fit(
    saved: &[Frontend],
    taken: &[Frontend],
    admission: &Admission,
    mut room: Room,
) -> (Vec<Frontend>, Vec<(String, String)>) {
    let same = |a: &Frontend, b: &Frontend| (a.addr, a.port, a.proto) == (b.addr, b.port, b.proto);
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for object in saved.chunk_by(|a, b| a.source == b.source) {
        let free: Vec<Frontend> = object
            .iter()
            .filter(|f| !taken.iter().any(|t| same(t, f)) && admission.admit(f.addr).is_ok())
            .cloned()
            .collect();
        match room.take(&free) {
            Ok(()) => out.extend(free),
            Err(why) => refused.push((object[0].source.clone(), why)),
        }
    }
    (out, refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;

    #[test]
    fn saved_frontends_load_back_and_a_missing_file_is_none() {
        let dir = std::env::temp_dir().join(format!("hairpin-state-{}", std::process::id()));
        let path = dir.join("cluster-state.json");
        assert_eq!(load(&path).unwrap(), Vec::new());
        let fe = vec![Frontend {
            policy: Default::default(),
            name: "HairpinRedirect/web/8080/tcp".into(),
            source: "HairpinRedirect/web".into(),
            addr: "203.0.113.10".parse().unwrap(),
            port: 8080,
            proto: 6,
            backends: vec![Backend {
                addr: "10.0.1.5".parse().unwrap(),
                port: 80,
                weight: 1,
            }],
        }];
        save(&path, &fe).unwrap();
        assert_eq!(load(&path).unwrap(), fe);
        fs::write(&path, "{").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .to_string()
            .contains("cluster-state.json"));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn at(source: &str, addr: &str, port: u16) -> Frontend {
        Frontend {
            policy: Default::default(),
            name: format!("{source}/{port}/tcp"),
            source: source.into(),
            addr: addr.parse().unwrap(),
            port,
            proto: 6,
            backends: Vec::new(),
        }
    }

    #[test]
    fn a_state_is_fitted_object_by_object_as_the_watches_objects_are() {
        let settings = crate::config::Kubernetes {
            kubeconfig: None,
            allowed_frontends: vec!["203.0.113.0/24".parse().unwrap()],
            annotation_namespaces: Vec::new(),
            pod_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            state_file: "/nonexistent".into(),
        };
        let node: [std::net::IpAddr; 1] = ["203.0.113.5".parse().unwrap()];
        let admission = Admission::new(&settings, &node, &[]);
        let saved = [
            at("HairpinRedirect/old", "203.0.113.10", 8080),
            at("HairpinRedirect/old", "203.0.113.10", 8081),
            // Now this node's address, and one the file has since.
            at("HairpinRedirect/moved", "203.0.113.5", 8080),
            at("HairpinRedirect/taken", "203.0.113.11", 8080),
            at("HairpinRedirect/wide", "203.0.113.12", 8080),
            at("HairpinRedirect/wide", "203.0.113.12", 8081),
            at("HairpinRedirect/last", "203.0.113.13", 8080),
        ];
        let file = [at("hairpin.yaml:3", "203.0.113.11", 8080)];
        // Room for four, taken in the order saved: the old object's two and
        // the wide one's; the last finds none. The node's address and the
        // file's frontend are left out whatever the room.
        let (fits, refused) = fit(&saved, &file, &admission, Room::of(4, 64));
        let got: Vec<_> = fits.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            got,
            [
                "HairpinRedirect/old/8080/tcp",
                "HairpinRedirect/old/8081/tcp",
                "HairpinRedirect/wide/8080/tcp",
                "HairpinRedirect/wide/8081/tcp",
            ]
        );
        assert_eq!(
            refused,
            [(
                "HairpinRedirect/last".to_owned(),
                "the datapath's tables are full: it needs 1 frontends, with room for 0".to_owned()
            )]
        );
    }
}

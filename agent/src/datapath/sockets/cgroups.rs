//! The cgroups chosen for the socket path, found in the cgroup v2 tree and
//! given to the datapath by id (`SOCK_CGROUPS`): those the file's patterns
//! name, and the pods' (a directory named for the pod's UID, wherever the
//! kubelet's driver and QoS class put it). A cgroup's id is its directory's
//! inode number.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use aya::maps::{HashMap, MapData};
use hairpin_common::{SOCK_CGROUPS, SOCK_CGROUPS_MAX, SOCK_CGROUP_LEVELS};

use crate::datapath::loader::Datapath;

/// How many directories one search reads at most: a node's tree has a few
/// hundred to a few thousand.
const MAX_VISITED: usize = 50_000;

/// A cgroup found: its path under the search's root and its id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    pub path: PathBuf,
    pub id: u64,
    /// Its level in the whole hierarchy (the root's is 0).
    pub level: usize,
}

impl Found {
    /// Why the datapath cannot see this cgroup, if it cannot.
    pub fn unseen(&self) -> Option<String> {
        (self.level > SOCK_CGROUP_LEVELS as usize).then(|| {
            format!(
                "cgroup {} is at level {}: the socket path looks {} levels deep",
                self.path.display(),
                self.level,
                SOCK_CGROUP_LEVELS
            )
        })
    }
}

/// A walk of the tree under `root` (at level `base`), to `depth` levels,
/// handing each directory's path under `root` to `visit`.
fn walk(root: &Path, base: usize, depth: usize, mut visit: impl FnMut(&Path, Found) -> bool) {
    let mut queue = vec![(PathBuf::new(), 0usize)];
    let mut visited = 0;
    while let Some((rel, d)) = queue.pop() {
        if d >= depth || visited >= MAX_VISITED {
            continue;
        }
        let Ok(entries) = fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            visited += 1;
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if !meta.is_dir() {
                continue;
            }
            let path = rel.join(entry.file_name());
            let found = Found {
                path: path.clone(),
                id: meta.ino(),
                level: base + d + 1,
            };
            if !visit(&path, found) {
                queue.push((path, d + 1));
            }
        }
    }
}

/// The level of `dir` in the hierarchy mounted at `root`.
pub fn level(root: &Path, dir: &Path) -> usize {
    dir.strip_prefix(root)
        .map_or(0, |rel| rel.components().count())
}

/// The cgroups under `under` (at `level`) that `patterns` match, each path
/// taken whole: a pattern's `*` stays within a name.
pub fn matching(under: &Path, level: usize, patterns: &[glob::Pattern]) -> Vec<Found> {
    let opts = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    let depth = patterns
        .iter()
        .map(|p| p.as_str().split('/').count())
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    walk(under, level, depth, |path, found| {
        let hit = patterns.iter().any(|p| p.matches_path_with(path, opts));
        if hit {
            out.push(found);
        }
        // Below a chosen cgroup all is chosen already.
        hit
    });
    out.sort();
    out
}

/// The cgroups of the pods `uids` under `under` (at `level`): the
/// directory whose name holds `pod<uid>`, the UID's dashes as they are
/// (cgroupfs driver) or as underscores (systemd driver).
pub fn of_pods(under: &Path, level: usize, uids: &BTreeSet<String>) -> BTreeMap<String, Found> {
    let mut out = BTreeMap::new();
    if uids.is_empty() {
        return out;
    }
    let names: Vec<(String, &String)> = uids
        .iter()
        .flat_map(|u| {
            [
                (format!("pod{u}"), u),
                (format!("pod{}", u.replace('-', "_")), u),
            ]
        })
        .collect();
    walk(under, level, SOCK_CGROUP_LEVELS as usize, |path, found| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let uid = names
            .iter()
            .find(|(n, _)| name.contains(n.as_str()))
            .map(|(_, u)| (*u).clone());
        match uid {
            Some(uid) => {
                out.insert(uid, found);
                true
            }
            None => false,
        }
    });
    out
}

/// Makes the datapath's `SOCK_CGROUPS` hold exactly `ids` (the first
/// `SOCK_CGROUPS_MAX`).
pub fn sync(dp: &mut Datapath, ids: &BTreeSet<u64>) -> Result<()> {
    let map = dp
        .ebpf
        .map_mut(SOCK_CGROUPS)
        .with_context(|| format!("map {SOCK_CGROUPS} missing from the object"))?;
    let mut map: HashMap<&mut MapData, u64, u8> = HashMap::try_from(map)?;
    let held: Vec<u64> = map.keys().filter_map(Result::ok).collect();
    for id in held.iter().filter(|id| !ids.contains(id)) {
        map.remove(id)?;
    }
    for id in ids.iter().take(SOCK_CGROUPS_MAX as usize) {
        if !held.contains(id) {
            map.insert(id, 1, 0)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dirs: &[&str]) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "hairpin-cgroups-{}-{}",
            std::process::id(),
            dirs.len()
        ));
        let _ = fs::remove_dir_all(&root);
        for d in dirs {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        root
    }

    fn paths(found: &[Found]) -> Vec<String> {
        found.iter().map(|f| f.path.display().to_string()).collect()
    }

    #[test]
    fn patterns_match_whole_paths_and_stop_at_a_chosen_cgroup() {
        let root = tree(&[
            "kubepods/burstable/pod-a/ctr",
            "kubepods/besteffort/pod-b",
            "kubepods/pod-c",
            "system.slice/pod-d",
        ]);
        let p = |s: &str| glob::Pattern::new(s).unwrap();
        let found = matching(&root, 2, &[p("kubepods/*/pod-*"), p("kubepods/pod-*")]);
        assert_eq!(
            paths(&found),
            [
                "kubepods/besteffort/pod-b",
                "kubepods/burstable/pod-a",
                "kubepods/pod-c"
            ]
        );
        let a = &found[1];
        assert_eq!(a.level, 5, "under a root at level 2");
        assert_eq!(a.id, fs::metadata(root.join(&a.path)).unwrap().ino());
        assert_eq!(a.unseen(), None);
        let deep = Found {
            level: 9,
            ..a.clone()
        };
        assert!(deep.unseen().unwrap().contains("level 9"));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_pods_cgroup_is_found_under_either_driver_and_any_qos_class() {
        let root = tree(&[
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_56.slice/cri-x.scope",
            "kubepods.slice/kubepods-podabcd_ef.slice",
            "kubepods/besteffort/pod9999-00",
            "kubepods/besteffort/pod7777-00",
        ]);
        let uids: BTreeSet<String> = ["1234-56", "abcd-ef", "9999-00", "0000-00"]
            .map(String::from)
            .into();
        let found = of_pods(&root, 0, &uids);
        let got: BTreeMap<&str, String> = found
            .iter()
            .map(|(u, f)| (u.as_str(), f.path.display().to_string()))
            .collect();
        assert_eq!(
            got,
            BTreeMap::from([
                (
                    "1234-56",
                    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_56.slice"
                        .to_string()
                ),
                ("9999-00", "kubepods/besteffort/pod9999-00".to_string()),
                (
                    "abcd-ef",
                    "kubepods.slice/kubepods-podabcd_ef.slice".to_string()
                ),
            ]),
            "a pod not there is not found, and another pod's is not taken"
        );
        fs::remove_dir_all(root).unwrap();
    }
}

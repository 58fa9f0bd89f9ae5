//! The last frontends known from the cluster, kept in a file so that an
//! agent started while the API server is away serves them, as the agent
//! before it did, until its watches have caught up.

use std::{fs, io::Write as _, path::Path};

use anyhow::{Context as _, Result};

use crate::config::Frontend;

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
}

//! A pod's view of the API server, for an agent started as the DaemonSet
//! starts it: the `KUBERNETES_SERVICE_*` variables and the ServiceAccount's
//! files (token, CA, namespace) at the path a pod has them, bind-mounted
//! over that path in a mount namespace of the agent's own, so that the
//! machine's own view is left alone.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::apiserver::ApiServer;

/// Where a pod's ServiceAccount files are (kube's in-cluster configuration
/// reads them there).
const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

pub struct ServiceAccount {
    files: PathBuf,
    host: String,
    port: u16,
    /// Directories of `MOUNT`'s path made for it, innermost first: removed
    /// on drop, the machine had none.
    made: Vec<PathBuf>,
}

impl ServiceAccount {
    /// The files of a ServiceAccount of `api` (a TLS one), under `dir`.
    pub fn new(api: &ApiServer, dir: &Path) -> Self {
        let files = dir.join("serviceaccount");
        fs::create_dir_all(&files).expect("the ServiceAccount's directory");
        let ca = api.ca_pem.as_deref().expect("an API server with TLS");
        fs::write(files.join("ca.crt"), ca).expect("ca.crt");
        fs::write(files.join("token"), "lab-token").expect("token");
        fs::write(files.join("namespace"), "kube-system").expect("namespace");
        let mut made = Vec::new();
        let mut p = Path::new(MOUNT);
        while !p.exists() {
            made.push(p.to_owned());
            p = p.parent().expect("a parent");
        }
        fs::create_dir_all(MOUNT).expect("the ServiceAccount's mount point");
        Self {
            files,
            host: api.addr.ip().to_string(),
            port: api.addr.port(),
            made,
        }
    }

    /// The command that runs what follows it (as `"$@"`) with the files at
    /// their place, in a mount namespace of its own.
    pub fn wrapper(&self) -> Vec<String> {
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &format!("mount --bind \"$0\" {MOUNT} && exec \"$@\""),
            &self.files.display().to_string(),
        ]
        .map(String::from)
        .to_vec()
    }

    /// The variables a pod gets for the `kubernetes` Service.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("KUBERNETES_SERVICE_HOST".into(), self.host.clone()),
            ("KUBERNETES_SERVICE_PORT".into(), self.port.to_string()),
        ]
    }
}

impl Drop for ServiceAccount {
    fn drop(&mut self) {
        for dir in &self.made {
            // Ignored error: only an empty directory made here goes.
            let _ = fs::remove_dir(dir);
        }
    }
}

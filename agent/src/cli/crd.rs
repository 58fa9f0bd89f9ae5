use anyhow::Result;

use crate::sources::kubernetes::crd;

/// Print the `HairpinRedirect` CustomResourceDefinition, as
/// `deploy/kubernetes/crd.yaml` holds it: `hairpin crd | kubectl apply -f -`.
#[derive(clap::Args)]
pub struct Args {}

pub fn crd(_: Args) -> Result<()> {
    print!("{}", crd::manifest());
    Ok(())
}

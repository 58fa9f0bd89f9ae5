//! Kubernetes mode: redirects from the cluster (`HairpinRedirect`
//! resources and annotated Services), with backends that follow their
//! pods through EndpointSlices. kube-rs's watchers and reflectors hold the
//! objects; [`claims::claimed`] turns them into frontends for the one
//! reconcile, beside the file's.

pub mod admission;
pub mod annotation;
pub mod claims;
pub mod crd;
pub mod endpoints;
pub mod events;
pub mod socket_choice;
pub mod state;
pub mod watch;

//! The `kubernetes` section.

use super::*;

#[test]
fn a_kubernetes_section_gives_its_settings_and_makes_redirects_optional() {
    let config = parse(&[
        "kubernetes:",
        "  kubeconfig: /etc/hairpin/kubeconfig",
        "  allowedFrontends: [203.0.113.0/24, 2001:db8:113::10, 198.51.100.7/16]",
        "  annotationNamespaces: [registry, web]",
        "  podCidrs: [10.244.0.0/16]",
        "  serviceCidrs: [10.96.0.0/12]",
        "  stateFile: /var/lib/hairpin/n1.json",
    ])
    .unwrap();
    assert!(config.frontends.is_empty() && config.named.is_empty());
    let k = config.kubernetes.expect("kubernetes mode");
    assert_eq!(k.kubeconfig, Some(PathBuf::from("/etc/hairpin/kubeconfig")));
    let nets: Vec<String> = k
        .allowed_frontends
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        nets,
        ["203.0.113.0/24", "2001:db8:113::10/128", "198.51.0.0/16"],
        "a lone address is its own net; host bits are dropped"
    );
    assert_eq!(k.annotation_namespaces, ["registry", "web"]);
    assert_eq!(k.pod_cidrs[0].to_string(), "10.244.0.0/16");
    assert_eq!(k.service_cidrs[0].to_string(), "10.96.0.0/12");
    assert_eq!(k.state_file, PathBuf::from("/var/lib/hairpin/n1.json"));
}

#[test]
fn an_empty_kubernetes_section_allows_no_frontend_and_keeps_the_default_state_file() {
    let k = parse(&["kubernetes: {}"]).unwrap().kubernetes.unwrap();
    assert!(k.allowed_frontends.is_empty());
    assert_eq!(k.kubeconfig, None);
    assert_eq!(
        k.state_file,
        PathBuf::from(crate::config::DEFAULT_CLUSTER_STATE)
    );
    let off = parse(&web_and(&["kubernetes: { enabled: false }"])).unwrap();
    assert_eq!(off.kubernetes, None);
}

#[test]
fn kubernetes_refusals_name_their_line_and_field() {
    assert_eq!(
        refusal(&[
            "kubernetes:",
            "  allowedFrontends: [203.0.113.0/24, 203.0.113.300/32]"
        ]),
        "test.yaml:2:38: kubernetes.allowedFrontends[1]: not a CIDR: \"203.0.113.300/32\""
    );
    assert_eq!(
        refusal(&["kubernetes:", "  annotationNamespaces: [Web]"]),
        "test.yaml:2:26: kubernetes.annotationNamespaces[0]: \"Web\" is not a namespace name"
    );
    assert_eq!(
        refusal(&["kubernetes:", "  podCidr: [10.244.0.0/16]"]),
        "test.yaml:2:3: kubernetes.podCidr: unknown field `podCidr`, expected one of enabled, kubeconfig, \
         allowedFrontends, annotationNamespaces, podCidrs, serviceCidrs, stateFile"
    );
    assert_eq!(
        refusal(&["interfaces: { uplink: eth0 }"]),
        "test.yaml:1:1: redirects: no redirects, and no kubernetes section to bring them"
    );
}

#[test]
fn the_cluster_manifests_configuration_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/kubernetes/hairpin-cluster.yaml"
    );
    let manifest = std::fs::read_to_string(path).expect("the manifest");
    let (_, embedded) = manifest
        .split_once("hairpin.yaml: |\n")
        .expect("the ConfigMap");
    let text: String = embedded
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or_default()))
        .collect();
    let config = Config::parse(Path::new("hairpin-cluster.yaml"), &text).unwrap();
    assert!(config.kubernetes.is_some());
}

use super::*;

#[test]
fn every_binding_of_the_services_is_a_route() {
    let s = DESCRIPTORS.get_service_by_name(SERVICES[0]).unwrap();
    let m = s
        .methods()
        .find(|m| m.name() == "GetWorkflowExecutionHistory")
        .unwrap();
    eprintln!("{:?}", m.options());
    eprintln!("{:?}", m.method_descriptor_proto().options);
    eprintln!("{:?}", DESCRIPTORS.get_extension_by_name("google.api.http"));
    let routes = Routes::new(&DESCRIPTORS, &SERVICES);
    let list: Vec<_> = routes
        .list()
        .map(|(v, t, r)| format!("{v} {t} {r}"))
        .collect();
    eprintln!("{}", list.join("\n"));
    assert!(list.len() > 200, "{} routes", list.len());
}

#[test]
fn a_list_of_payloads_not_all_shown_short_shows_each_that_can_be() {
    let desc = DESCRIPTORS
        .get_message_by_name("temporal.api.common.v1.Payloads")
        .unwrap();
    let mut json = serde_json::json!({"payloads":[{"data":"AAEC","metadata":{"encoding":"YmluYXJ5L3BsYWlu"}},{"data":"eyJuYW1lIjoieCJ9","metadata":{"encoding":"anNvbi9wcm90b2J1Zg==","messageType":"dGVtcG9yYWwuYXBpLmNvbW1vbi52MS5Xb3JrZmxvd1R5cGU="}}]});
    payloads::shorten(&mut json, &desc);
    assert_eq!(
        json,
        serde_json::json!({"payloads":[{"data":"AAEC","metadata":{"encoding":"YmluYXJ5L3BsYWlu"}},{"_protoMessageType":"temporal.api.common.v1.WorkflowType","name":"x"}]})
    );
}

//! Unit tests of [`super`] (the route table and the matcher).
use super::*;

/// The template with its parameter replaced by `value` (already encoded).
fn fill(template: &str, value: &str) -> String {
    template
        .split('/')
        .map(|s| {
            if template_param(s).is_some() {
                value
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn sample(route: &Route) -> &'static str {
    match route.param_name() {
        Some("id") => "3f0c8d2a9b7e41c6a5d4e3f2b1a09876",
        _ => "deploy",
    }
}

#[test]
fn table_invariants() {
    assert_eq!(ROUTES.len(), 51);
    for (i, a) in ROUTES.iter().enumerate() {
        assert!(a.template.starts_with('/'), "{}", a.template);
        let params = segments(a.template)
            .filter(|s| template_param(s).is_some())
            .count();
        assert!(params <= 1, "{}", a.template);
        assert!(segments(a.template).count() <= MAX_SEGMENTS);
        assert!(matches!(
            a.param_name(),
            None | Some("key" | "id" | "channel")
        ));
        for b in &ROUTES[i + 1..] {
            assert_ne!(a.operation_id, b.operation_id);
            assert_ne!(a.op, b.op);
            assert!(a.template != b.template || a.method != b.method);
        }
        assert_eq!(route_of(a.op), Some(a));
        if a.method == Method::Get || a.method == Method::Delete {
            assert_eq!(a.body, BodyKind::Empty, "{}", a.template);
        }
        if a.is_sse() {
            assert_eq!(a.method, Method::Get);
        }
    }
}

#[test]
fn every_route_matches_its_own_template() {
    for route in ROUTES.iter() {
        let path = fill(route.template, sample(route));
        let got = match_route(route.method.as_str(), &path);
        let want_param = route.param_name().map(|_| sample(route).to_string());
        assert_eq!(
            got,
            RouteMatch::Found {
                route,
                param: want_param
            },
            "{path}"
        );
    }
}

#[test]
fn head_matches_get_except_sse() {
    for route in ROUTES.iter().filter(|r| r.method == Method::Get) {
        let path = fill(route.template, sample(route));
        match match_route("HEAD", &path) {
            RouteMatch::Found { route: r, .. } => {
                assert!(!route.is_sse());
                assert_eq!(r, route);
            }
            RouteMatch::MethodNotAllowed { allow } => {
                assert!(route.is_sse(), "{path}");
                assert_eq!(allow.header_value(), "GET, OPTIONS");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[test]
fn not_found_and_method_not_allowed() {
    assert_eq!(match_route("GET", "/nope"), RouteMatch::NotFound);
    assert_eq!(match_route("GET", "/"), RouteMatch::NotFound);
    assert_eq!(match_route("GET", ""), RouteMatch::NotFound);
    assert_eq!(match_route("GET", "health"), RouteMatch::NotFound);
    assert_eq!(
        match_route("GET", "/v1/locks/a/b/c/d"),
        RouteMatch::NotFound
    );
    assert_eq!(
        match_route("POST", "/v1/locks/a/unknown"),
        RouteMatch::NotFound
    );
    let allow = |m, p| match match_route(m, p) {
        RouteMatch::MethodNotAllowed { allow } => allow.header_value(),
        other => panic!("{m} {p}: {other:?}"),
    };
    assert_eq!(allow("POST", "/health"), "GET, HEAD, OPTIONS");
    assert_eq!(allow("GET", "/v1/locks/job"), "POST, OPTIONS");
    assert_eq!(
        allow("PUT", "/v1/kv/greeting"),
        "GET, HEAD, POST, DELETE, OPTIONS"
    );
    assert_eq!(allow("get", "/health"), "GET, HEAD, OPTIONS");
    assert_eq!(allow("GET", "/v1/sessions/x"), "DELETE, PATCH, OPTIONS");
    assert_eq!(allow("POST", "/v1/signals"), "GET, OPTIONS");
    assert_eq!(
        allowed_methods("/v1/lists/jobs").map(Allow::header_value),
        Some("GET, HEAD, OPTIONS".to_string())
    );
    assert_eq!(allowed_methods("/v1/nothing"), None);
}

#[test]
fn trailing_slash_is_another_path() {
    assert_eq!(match_route("GET", "/health/"), RouteMatch::NotFound);
    assert_eq!(match_route("POST", "/v1/locks/job/"), RouteMatch::NotFound);
    assert_eq!(match_route("POST", "/v1/sessions/"), RouteMatch::NotFound);
}

#[test]
fn keys_are_one_decoded_segment() {
    let found = |m, p| match match_route(m, p) {
        RouteMatch::Found { route, param } => (route.op, param),
        other => panic!("{p}: {other:?}"),
    };
    assert_eq!(
        found("POST", "/v1/locks/a%2Fb/release"),
        (Op::ReleaseLock, Some("a/b".into()))
    );
    assert_eq!(
        found("POST", "/v1/locks/a%2Frelease"),
        (Op::AcquireLock, Some("a/release".into()))
    );
    assert_eq!(
        found("GET", "/v1/kv/%C3%A9t%C3%A9"),
        (Op::GetKv, Some("été".into()))
    );
    // A key may be spelled like a literal of another route.
    assert_eq!(
        found("POST", "/v1/locks/release"),
        (Op::AcquireLock, Some("release".into()))
    );
    // Literal segments are compared decoded.
    assert_eq!(found("GET", "/%68ealth"), (Op::Health, None));
    // An empty parameter segment matches nothing.
    assert_eq!(match_route("POST", "/v1/locks//wait"), RouteMatch::NotFound);
    assert_eq!(
        found("POST", "/v1/signals/orders.created"),
        (Op::PublishSignal, Some("orders.created".into()))
    );
}

#[test]
fn bad_escapes() {
    assert_eq!(
        match_route("POST", "/v1/locks/a%2/release"),
        RouteMatch::BadPath(DecodeError::BadEscape)
    );
    assert_eq!(
        match_route("GET", "/v1/kv/%FF"),
        RouteMatch::BadPath(DecodeError::NotUtf8)
    );
    // Routing comes first: a bad escape in a literal position is just no match,
    // and a wrong method is 405 even with a bad parameter.
    assert_eq!(match_route("GET", "/v1/%zz"), RouteMatch::NotFound);
    assert!(matches!(
        match_route("DELETE", "/v1/locks/%zz"),
        RouteMatch::MethodNotAllowed { .. }
    ));
}

#[test]
fn flags() {
    let r = |op| route_of(op).unwrap();
    assert!(r(Op::AcquireLock).session);
    assert!(r(Op::Position).session);
    assert!(!r(Op::Who).session);
    assert!(!r(Op::PatchSession).session);
    assert!(r(Op::PatchSession).is_session_endpoint());
    assert!(!r(Op::GetKv).is_session_endpoint());
    for op in [Op::Health, Op::Ready, Op::OpenApi] {
        assert!(r(op).auth_exempt);
    }
    assert!(!r(Op::Metrics).auth_exempt);
    for op in [Op::Health, Op::Ready, Op::Metrics] {
        assert!(r(op).operational);
    }
    assert_eq!(ROUTES.iter().filter(|r| r.auth_exempt).count(), 3);
    assert_eq!(ROUTES.iter().filter(|r| r.operational).count(), 3);
    assert_eq!(ROUTES.iter().filter(|r| r.is_sse()).count(), 4);
}

#[test]
fn template_of_any_method() {
    for route in ROUTES.iter() {
        let path = fill(route.template, sample(route));
        assert_eq!(template_of(&path), Some(route.template), "{path}");
        // A parameter that does not decode still has the path's template.
        if route.param_name().is_some() {
            assert_eq!(
                template_of(&fill(route.template, "%ZZ")),
                Some(route.template)
            );
        }
    }
    for path in [
        "",
        "x",
        "/",
        "/v1/kv/",
        "/v1/kv/a/b/c/d",
        "/v1/locks/a/nope",
    ] {
        assert_eq!(template_of(path), None, "{path}");
    }
}

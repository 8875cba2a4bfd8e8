//! placeholder, replaced by its implementation
fn main() {}

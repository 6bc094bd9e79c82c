mod common;
#[test]
fn a() {
    let f = common::Fixture::new();
    f.init_token();
}
#[test]
fn b() {
    let f = common::Fixture::new();
    f.init_token();
}
#[test]
fn c() {
    let f = common::Fixture::new();
    f.init_token();
}

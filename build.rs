// Rebuild when a migration is added or edited: they are embedded with include_dir!.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

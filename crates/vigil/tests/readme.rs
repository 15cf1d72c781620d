//! The README stays true: every environment variable and every catalogue metric is documented.

use vigil::catalogue;
use vigil::config::ENV_VARS;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md")
}

#[test]
fn every_env_var_is_in_the_config_reference() {
    let readme = readme();
    for var in ENV_VARS {
        assert!(
            readme.contains(&format!("`{}`", var.name)),
            "README misses {}",
            var.name
        );
        if var.key != "-" {
            assert!(
                readme.contains(&format!("`{}`", var.key)),
                "README misses the key {}",
                var.key
            );
        }
    }
}

#[test]
fn every_catalogue_metric_is_in_the_metric_catalogue() {
    let readme = readme();
    for def in catalogue::ALL {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", def.name)))
            .unwrap_or_else(|| panic!("README's catalogue misses {}", def.name));
        assert!(row.contains(&format!("| {} |", def.kind.as_str())), "{row}");
        for tag in def.tags {
            assert!(row.contains(tag), "{row} misses tag {tag}");
        }
    }
}

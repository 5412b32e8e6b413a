//! A rule on one line, for `probe rules history` and the reports of a change: its versions and
//! shares, header routes, affinity tag and tiers.

use probe_runtime::registry::operator::RuleRevision;
use probe_runtime::rules::{DEFAULT_OVERPROVISIONING, Rule};

/// `versions 1 90%, 2 10%; route canary=1 -> 2; affinity zone (min share 0.5); tiers only 0`.
pub fn summary(rule: &Rule) -> String {
    let mut parts = Vec::new();
    if !rule.versions.is_empty() {
        let shares: Vec<String> =
            rule.versions.iter().map(|v| format!("{} {}%", v.version, v.share)).collect();
        parts.push(format!("versions {}", shares.join(", ")));
    }
    for route in &rule.header_routes {
        parts.push(format!("route {}={} -> {}", route.header, route.value, route.version));
    }
    if let Some(affinity) = &rule.affinity {
        parts.push(format!("affinity {} (min share {})", affinity.tag, affinity.min_share));
    }
    if let Some(tiers) = &rule.tiers {
        let mut text = "tiers".to_owned();
        if let Some(only) = &tiers.only {
            let only: Vec<String> = only.iter().map(u8::to_string).collect();
            text.push_str(&format!(" only {}", only.join(",")));
        }
        if tiers.overprovisioning != DEFAULT_OVERPROVISIONING || tiers.only.is_none() {
            text.push_str(&format!(" overprovisioning {}", tiers.overprovisioning));
        }
        parts.push(text);
    }
    if parts.is_empty() {
        return "no constraint: every node by weight (tiers as the nodes declare)".to_owned();
    }
    parts.join("; ")
}

/// A stored revision on one line: its [`summary`], or its first problem when it is not a valid
/// rule.
pub fn revision_summary(revision: &RuleRevision) -> String {
    match &revision.rule {
        Ok(rule) => summary(rule),
        Err(problems) => match problems.first() {
            Some(first) => format!("not a valid rule: {first}"),
            None => "not a valid rule".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_a_rule_is_summarized() {
        let rule = Rule::parse(
            r#"{"versions": [{"version": "1.4.0", "share": 95}, {"version": "2.0.0", "share": 5}],
                "header_routes": [{"header": "canary", "value": "1", "version": "2.0.0"}],
                "affinity": {"tag": "zone"}, "tiers": {"only": [0, 1]}}"#,
        )
        .unwrap();
        assert_eq!(
            summary(&rule),
            "versions 1.4.0 95%, 2.0.0 5%; route canary=1 -> 2.0.0; affinity zone (min share 0.5); tiers only 0,1"
        );
        let tiers = Rule::parse(r#"{"tiers": {"overprovisioning": 1.2}}"#).unwrap();
        assert_eq!(summary(&tiers), "tiers overprovisioning 1.2");
        assert!(summary(&Rule::default()).starts_with("no constraint"));
    }
}

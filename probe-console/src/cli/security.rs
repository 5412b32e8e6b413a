//! `probe apps credential ...`, `probe zk secure` and `probe callers ...`: app credentials,
//! ZooKeeper ACLs and per-service caller policies ([`probe_runtime::security`]), changed through
//! [`Operator`] so every change is audited.
//!
//! A secret is shown once, when it is issued: in the text output, or written to
//! `--credential-file` (mode 0600). It never appears in `--json` output: with `--json`, a
//! credential file is required.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use probe_runtime::registry::layout::{Env, check_appkey, check_service_name};
use probe_runtime::registry::{IssuedCredential, NodeChange, Operator};
use probe_runtime::security::{AppCredential, CallerPolicy, Unauthenticated};
use serde_json::json;

use super::output::time::utc;
use super::output::{Align, Report, Table};

/// Where an issued secret goes: printed once (text output), or into a file.
#[derive(Debug, Clone, Copy)]
pub enum SecretOut<'a> {
    /// In the text output.
    Print,
    /// Into this file, created with mode 0600.
    File(&'a Path),
}

impl<'a> SecretOut<'a> {
    /// `file` if given; else printed, which `--json` refuses (secrets never go into JSON).
    pub fn new(file: Option<&'a Path>, json: bool) -> Result<SecretOut<'a>> {
        match (file, json) {
            (Some(file), _) => Ok(SecretOut::File(file)),
            (None, false) => Ok(SecretOut::Print),
            (None, true) => bail!(
                "a secret is never printed in --json output: name a --credential-file to write it to, \
                 or leave out --json"
            ),
        }
    }
}

/// Writes `appkey:secret` to `path`, readable by its owner only; refuses to overwrite a file.
fn write_secret(path: &Path, credential: &AppCredential) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!("cannot create the credential file {} (it must not exist yet)", path.display())
    })?;
    writeln!(file, "{}:{}", credential.appkey, credential.secret.expose())
        .with_context(|| format!("cannot write the credential file {}", path.display()))
}

/// The report of an issued credential; the secret goes to `out`.
fn issued_report(issued: &IssuedCredential, out: SecretOut<'_>) -> Result<Report> {
    let appkey = &issued.credential.appkey;
    let shown = match out {
        SecretOut::File(path) => {
            write_secret(path, &issued.credential)?;
            format!("written to {} (mode 0600)", path.display())
        }
        SecretOut::Print => format!(
            "PROBE_APP_CREDENTIAL={appkey}:{}\n(shown once: store it as a secret of the app's deployment; \
             only what verifies it is stored)",
            issued.credential.secret.expose()
        ),
    };
    let what = if issued.rotated {
        format!(
            "rotated the credential of {appkey}; the previous one stays valid until `probe apps credential \
             retire {appkey}`"
        )
    } else {
        format!("issued a credential to {appkey}")
    };
    let secured = match &issued.secured {
        Some(path) => format!("\nZooKeeper: {path} is secured for it"),
        None => String::new(),
    };
    let json = json!({
        "appkey": appkey,
        "rotated": issued.rotated,
        "zk_digest_user": appkey,
        "issued_at_ms": issued.stored.issued_at_ms,
        "secured_path": issued.secured,
        "credential_file": match out { SecretOut::File(p) => Some(p.display().to_string()), SecretOut::Print => None },
        "audited": issued.audit.is_ok(),
    });
    let mut report = Report::new(json, format!("{what}: {shown}{secured}"));
    if let Err(e) = &issued.audit {
        report = report.with_warning(format!("the change was applied but not audited: {e}"));
    }
    Ok(report)
}

/// Issues (or rotates) the credential of `appkey`.
pub async fn rotate(op: &Operator, appkey: &str, out: SecretOut<'_>) -> Result<Report> {
    check_appkey(appkey).context("cannot issue a credential")?;
    if let SecretOut::File(path) = out
        && path.exists()
    {
        bail!("cannot issue a credential: the credential file {} exists already", path.display());
    }
    let issued = op
        .issue_credential(appkey)
        .await
        .with_context(|| format!("cannot issue a credential to {appkey}"))?;
    issued_report(&issued, out)
}

/// The credential of a newly added app, as a part of `probe apps add`'s report: its text, its
/// JSON, or why none was issued (a warning).
pub async fn issue_on_add(op: &Operator, appkey: &str, out: SecretOut<'_>) -> Result<Result<Report, String>> {
    match op.issue_credential(appkey).await {
        Ok(issued) => Ok(Ok(issued_report(&issued, out)?)),
        Err(e) => Ok(Err(format!(
            "no credential was issued to {appkey}: {e}; after fixing that, issue one with `probe apps credential \
             rotate {appkey}`"
        ))),
    }
}

/// Drops the previous credential of `appkey`.
pub async fn retire(op: &Operator, appkey: &str) -> Result<Report> {
    check_appkey(appkey).context("cannot retire a credential")?;
    let stored = op
        .retire_credential(appkey)
        .await
        .with_context(|| format!("cannot retire the credential of {appkey}"))?;
    let Some(stored) = stored else {
        bail!("app {appkey} has no credential: issue one with `probe apps credential rotate {appkey}`");
    };
    Ok(Report::new(
        json!({ "appkey": appkey, "issued_at_ms": stored.issued_at_ms, "previous": false }),
        format!("{appkey} now has only its credential issued {}", utc(stored.issued_at_ms / 1000)),
    ))
}

/// What is stored of the credential of `appkey` (never the secret).
pub async fn show(op: &Operator, appkey: &str) -> Result<Report> {
    check_appkey(appkey).context("cannot show the credential")?;
    let stored = op
        .backends()
        .apps
        .credential(appkey)
        .await
        .with_context(|| format!("cannot read the credential of {appkey}"))?;
    let Some(stored) = stored else {
        return Ok(Report::new(
            json!({ "appkey": appkey, "credential": false }),
            format!("app {appkey} has no credential; issue one with `probe apps credential rotate {appkey}`"),
        ));
    };
    let previous = stored.previous_zk_digest.is_some();
    Ok(Report::new(
        json!({
            "appkey": appkey,
            "credential": true,
            "issued_at_ms": stored.issued_at_ms,
            "previous": previous,
        }),
        format!(
            "{appkey}: credential issued {}{}",
            utc(stored.issued_at_ms / 1000),
            if previous {
                "; the previous one is still valid (retire it with `probe apps credential retire`)"
            } else {
                ""
            }
        ),
    ))
}

/// `probe zk secure`: secures the tree of `env`, or says what it would do.
pub async fn secure(op: &Operator, env: Env, dry_run: bool) -> Result<Report> {
    let report = op
        .secure_zk(env, dry_run)
        .await
        .with_context(|| format!("cannot secure the ZooKeeper tree of {env}"))?;
    let mut table = Table::new(&[("PATH", Align::Left), ("BEFORE", Align::Left), ("AFTER", Align::Left)]);
    let acl_text = |acl: &[probe_runtime::security::acl::AclEntry]| {
        acl.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
    };
    let mut changed = 0;
    for change in report.paths.iter().filter(|c| c.changes()) {
        changed += 1;
        let before = change.before.as_deref().map_or_else(|| "(created)".to_owned(), acl_text);
        table.row(vec![change.path.clone(), before, acl_text(&change.after)]);
    }
    let verb = if dry_run { "would change" } else { "changed" };
    let mut text = format!("{verb} the ACLs of {changed} of {} paths in {env}\n", report.paths.len());
    if changed > 0 {
        text.push_str(&table.render());
    }
    let json = json!({
        "env": env.to_string(),
        "dry_run": dry_run,
        "changed": changed,
        "paths": report.paths.iter().map(|c| json!({
            "path": c.path,
            "changes": c.changes(),
            "before": c.before.as_ref().map(|acl| acl.iter().map(ToString::to_string).collect::<Vec<_>>()),
            "after": c.after.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "without_credential": report.without_credential,
    });
    let mut out = Report::new(json, text);
    if !report.without_credential.is_empty() {
        out = out.with_warning(format!(
            "left unsecured, having no credential: {}; issue one with `probe apps credential rotate APPKEY`, \
             then run this again",
            report.without_credential.join(", ")
        ));
    }
    if let Err(e) = &report.audit {
        out = out.with_warning(format!("the change was applied but not audited: {e}"));
    }
    Ok(out)
}

/// `probe callers show APPKEY [SERVICE]`: each node's caller policy.
pub async fn callers_show(op: &Operator, appkey: &str, service: Option<&str>) -> Result<Report> {
    check_appkey(appkey).context("cannot show caller policies")?;
    if let Some(service) = service {
        check_service_name(service).context("cannot show caller policies")?;
    }
    let nodes = op.nodes(appkey).await.with_context(|| format!("cannot read the nodes of {appkey}"))?;
    let mut table = Table::new(&[
        ("SERVICE", Align::Left),
        ("NODE", Align::Left),
        ("RUNNING", Align::Left),
        ("CALLERS", Align::Left),
    ]);
    let mut rows = Vec::new();
    for node in nodes.iter().filter(|n| service.is_none_or(|s| n.key.service() == s)) {
        let data = node.live.as_ref().or(node.settings.as_ref());
        let value = data.and_then(|d| d.callers.clone());
        let shown = match &value {
            None => "none (any caller)".to_owned(),
            Some(v) => match CallerPolicy::from_json(v) {
                Ok(policy) => policy.to_string(),
                Err(problems) => {
                    format!("refused: {}", probe_runtime::limits::describe(&problems).replace('\n', "; "))
                }
            },
        };
        let address = format!("{}:{}", node.key.ip(), node.key.port());
        table.row(vec![
            node.key.service().to_owned(),
            address.clone(),
            if node.live.is_some() { "yes" } else { "no" }.into(),
            shown,
        ]);
        rows.push(json!({
            "service": node.key.service(),
            "node": address,
            "running": node.live.is_some(),
            "callers": value,
        }));
    }
    let text = if rows.is_empty() {
        format!("{appkey} has no node{}", service.map(|s| format!(" of {s}")).unwrap_or_default())
    } else {
        table.render()
    };
    Ok(Report::new(json!({ "appkey": appkey, "nodes": rows }), text))
}

/// `probe callers set|clear`: sets (or clears, with `None`) the caller policy of every node of
/// the service.
pub async fn callers_set(
    op: &Operator,
    appkey: &str,
    service: &str,
    policy: Option<CallerPolicy>,
) -> Result<Report> {
    check_appkey(appkey)
        .and_then(|()| check_service_name(service))
        .context("cannot set the caller policy")?;
    let changes = op
        .set_service_callers(appkey, service, policy.as_ref())
        .await
        .with_context(|| format!("cannot set the caller policy of {appkey}/{service}"))?;
    let shown = policy.as_ref().map_or_else(|| "none (any caller)".to_owned(), ToString::to_string);
    let live = changes.iter().filter(|c| c.live).count();
    let text = format!(
        "caller policy of {appkey}/{service}: {shown}\nset on {} nodes ({live} running, applied at once)",
        changes.len()
    );
    let json = json!({
        "appkey": appkey,
        "service": service,
        "callers": policy.as_ref().map(CallerPolicy::to_json),
        "nodes": changes.iter().map(|c: &NodeChange| json!({
            "node": format!("{}:{}", c.key.ip(), c.key.port()),
            "running": c.live,
            "audited": c.audit.is_ok(),
        })).collect::<Vec<_>>(),
    });
    let mut report = Report::new(json, text);
    if let Some(err) = changes.iter().find_map(|c| c.audit.as_ref().err()) {
        report = report.with_warning(format!("the change was applied but not audited: {err}"));
    }
    Ok(report)
}

/// The policy `probe callers set` builds from its flags over the one the service has now (the
/// first node's): `--allow` replaces the list, `--add`/`--remove` change it, `--any` drops it.
pub async fn policy_from_flags(
    op: &Operator,
    appkey: &str,
    service: &str,
    flags: &super::args::CallersFlags,
) -> Result<CallerPolicy> {
    let nodes = op.nodes(appkey).await.with_context(|| format!("cannot read the nodes of {appkey}"))?;
    let current = nodes
        .iter()
        .filter(|n| n.key.service() == service)
        .find_map(|n| n.live.as_ref().or(n.settings.as_ref()).and_then(|d| d.callers.clone()));
    let mut policy = match current {
        Some(value) => CallerPolicy::from_json(&value).unwrap_or_default(),
        None => CallerPolicy::default(),
    };
    if flags.any {
        policy.allow = None;
    }
    if let Some(allow) = &flags.allow {
        policy.allow = Some(allow.iter().cloned().collect());
    }
    for appkey in &flags.add {
        policy.allow.get_or_insert_with(Default::default).insert(appkey.clone());
    }
    for appkey in &flags.remove {
        if let Some(allow) = &mut policy.allow {
            allow.remove(appkey);
        }
    }
    if let Some(word) = &flags.unauthenticated {
        policy.unauthenticated = Unauthenticated::parse(word)
            .with_context(|| format!("--unauthenticated {word:?} is not one of allow, count, refuse"))?;
    }
    for appkey in policy.allow.iter().flatten() {
        check_appkey(appkey).with_context(|| format!("cannot allow caller {appkey:?}"))?;
    }
    Ok(policy)
}

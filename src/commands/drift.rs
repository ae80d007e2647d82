//! `tokensmith drift`: what differs between git and live Dynatrace; exit 2 when anything does.
//! Optionally writes the numbers as OpenMetrics and sends them to Dynatrace's metrics ingest,
//! and (`--verify-values`) looks up the values readable targets hold.

use std::collections::BTreeMap;

use anyhow::Context;

use super::plan::write_metrics;
use super::session::{self, Session};
use crate::cli::settings::{Connections, DriftSettings};
use crate::live::metrics_ingest::send_metric_lines;
use crate::live::{ClientSettings, Connector, Transport};
use crate::model::{Holder, Home, Target, TargetAddress, TokenKind};
use crate::output::{ExitStatus, Printer};
use crate::plan::ValueLookup;
use crate::render::metrics::{dynatrace_lines, Metrics};
use crate::{plan, render};

pub fn run(
    args: DriftSettings,
    connect: &Connections,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let report_args = &args.report;
    if let Some(path) = &args.metrics_file {
        super::check_output_file("--metrics-file", path)?;
    }
    let Some(source) = session::load_spec(&report_args.spec.file, None, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let mut session = Session::new(
        &report_args.spec.file,
        source,
        &report_args.envs,
        &report_args.accounts,
        connect,
    )?;
    session.restrict_commands(report_args.no_exec, None)?;
    let runtime = session::runtime()?;
    let world = runtime.block_on(session.read_world_shown(printer.progress_bars()))?;
    for w in world.warnings.iter().chain(&world.commands_not_run) {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let now = session::now(&world.live);
    let mut report = plan::drift(&session.desired, &world.live, &world.targets, now);
    if args.verify_values {
        let lookups = runtime.block_on(look_up_values(&session, &world.targets, printer))?;
        plan::add_value_drift(&mut report, &session.desired, &world.targets, &lookups);
    }
    render::render_drift(&report, report_args.format, printer.out())?;

    if args.metrics_file.is_some() || args.send_metrics {
        // The forecast (days to expiry) comes from a plan over the same inputs; the planner is
        // pure, so this costs no API call.
        let metrics = match plan::plan(
            &session.desired,
            &world.live,
            &world.targets,
            now,
            &session.plan_options(None),
        ) {
            Ok(p) => Metrics::from_plan(&p),
            Err(_) => Metrics::new(now),
        }
        .with_drift(&report);
        if let Some(path) = &args.metrics_file {
            write_metrics(path, &metrics)?;
        }
        if args.send_metrics {
            runtime.block_on(send_metrics(
                &session,
                &metrics,
                &connect.dynatrace,
                printer,
            ))?;
        }
    }
    Ok(if report.has_drift() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// Read the value of every readable target (files, Kubernetes Secrets) of an API token that
/// records a token id, and look it up in the token's environment. Values stay in memory; a
/// target whose value cannot be read is reported as a warning and skipped.
async fn look_up_values(
    session: &Session,
    targets: &crate::model::TargetSnapshot,
    printer: &mut Printer,
) -> anyhow::Result<BTreeMap<TargetAddress, ValueLookup>> {
    let mut found = BTreeMap::new();
    for d in &session.desired.tokens {
        let (TokenKind::ApiToken, Home::Environment(env_name)) = (d.kind, &d.home) else {
            continue;
        };
        let Some(env) = session.desired.environments.get(env_name) else {
            continue;
        };
        for target in &d.deliver {
            if matches!(target, Target::Exec(_)) {
                continue;
            }
            let address = target.address();
            if !matches!(targets.holders.get(&address), Some(Holder::Token { .. })) {
                continue;
            }
            let value = match session.deliverer.read_value(target).await {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e) => {
                    writeln!(printer.err(), "warning: cannot verify {address}: {e}")?;
                    continue;
                }
            };
            let client = session
                .connector
                .environment(env)
                .await
                .with_context(|| format!("environment `{env_name}`"))?;
            let lookup = client
                .lookup(&value)
                .await
                .with_context(|| format!("cannot look up the value of {address}"))?;
            found.insert(
                address,
                lookup.map_or(ValueLookup::NoValidToken, |t| ValueLookup::Token(t.id)),
            );
        }
    }
    Ok(found)
}

/// Send each environment the numbers of its own tokens (plus the drift count).
async fn send_metrics(
    session: &Session,
    metrics: &Metrics,
    client: &ClientSettings,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    let transport = Transport::new(client)?;
    for env in session.desired.environments.values() {
        let mut mine = metrics.clone();
        mine.tokens
            .retain(|t| matches!(&t.home, Home::Environment(e) if e == &env.name));
        let (base, token) = session.endpoint(env).await?;
        let report = send_metric_lines(&transport, &base, &token, &dynatrace_lines(&mine))
            .await
            .with_context(|| format!("cannot send metrics to environment `{}`", env.name))?;
        writeln!(
            printer.err(),
            "sent {} metric line(s) to environment `{}`",
            report.lines_ok,
            env.name
        )?;
    }
    Ok(())
}

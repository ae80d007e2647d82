//! `tokensmith drift`: what differs between git and live Dynatrace; exit 2 when anything does.
//! Optionally writes the numbers as OpenMetrics and sends them to Dynatrace's metrics ingest.

use anyhow::Context;

use super::plan::write_metrics;
use super::session::{self, Session};
use crate::cli::settings::DriftSettings;
use crate::live::metrics_ingest::send_metric_lines;
use crate::live::{ClientSettings, Transport};
use crate::model::Home;
use crate::output::{ExitStatus, Printer};
use crate::render::metrics::{dynatrace_lines, Metrics};
use crate::{plan, render};

pub fn run(
    args: DriftSettings,
    client: &ClientSettings,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let report_args = &args.report;
    let Some(source) = session::load_spec(&report_args.spec.file, None, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::new(&report_args.spec.file, source, &report_args.envs, client)?;
    let runtime = session::runtime()?;
    let world = runtime.block_on(session.read_world())?;
    for w in &world.warnings {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let now = session::now(&world.live);
    let report = plan::drift(&session.desired, &world.live, &world.targets, now);
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
            runtime.block_on(send_metrics(&session, &metrics, client, printer))?;
        }
    }
    Ok(if report.has_drift() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
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

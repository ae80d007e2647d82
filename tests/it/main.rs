//! The one integration-test binary. Each module below was a test binary of its own; they share
//! `support/` (the in-memory apply harness, a seeded sandbox driven through the real binary, an
//! HTTP client for the sandbox, a scripted HTTP stub and a Kubernetes API double) and link the
//! crate once, which is most of the build time on a small machine.

// Tests and benchmarks report on the terminal, and read the environment they run in (`CI`);
// the one-door rules for output and environment variables are the library's.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

mod support;

mod apply_chaos;
mod apply_fleet;
mod apply_flows;
mod apply_lease;
mod apply_sandbox;
mod cli_docs;
mod cli_live;
mod cli_sandbox_admin;
mod commands_session;
mod deliver_exec;
mod deliver_file;
mod deliver_kube;
mod deliver_kube_tenant;
mod deliver_restart;
mod error_texts;
mod gitops_ci;
mod gitops_commands;
mod gitops_desired_diff;
mod gitops_git;
mod gitops_metrics;
mod inventory_report;
mod live_account;
mod live_hostile;
mod live_http;
mod live_pacing;
mod live_snapshot;
mod odd_files;
mod plan_properties;
mod plan_render;
mod plan_scale;
mod plan_scenarios;
mod platform_sandbox;
mod purged_token;
mod report_actions;
mod sandbox_api;
mod sandbox_faults;
mod sandbox_fidelity;
mod sandbox_metrics;
mod saved_plan;
mod spec_bad_corpus;
mod spec_examples;
mod spec_fleet;
mod spec_large;
mod spec_props;
mod spec_semantics;
mod tenant_rotation;

//! The `exec` target: a command that receives the value (`oneagentctl` over ssh or ansible, a
//! script that updates a vault).
//!
//! Commands run without a shell, in the spec's directory, in their own process group so a
//! timeout kills everything they started. The value is passed in an environment variable
//! (`secret_env`), on stdin with no trailing newline (`secret_stdin`), or, only when the spec
//! sets `secret_in_argv`, in place of the literal `{{ secret }}` in an argument. Every command
//! also gets the record in `TOKENSMITH_*` variables ([`super::exec_env`]) so scripts can store it.
//!
//! A non-zero exit fails the delivery; the error quotes the end of stderr with the secret (and
//! anything shaped like a full `dt0…` token) redacted. Without a `read_command` the target is
//! write-only; a `verify_command` then confirms the delivery.
//!
//! Commands come from the spec, and a spec can come from a pull request while tokensmith holds
//! management tokens and OAuth client secrets in its environment. So a child never inherits
//! that environment: it gets [`INHERITED`] (`PATH`, `HOME`, `LANG`, `TZ`), the variables the
//! target names in `env:` (`SSH_AUTH_SOCK` for ssh), its own value and the record. Nothing else.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::{DeliverError, HolderText};
use super::record::{holder_from, same_token, Record};
use super::{exec_env, redact, Delivered, DeliveryContext, Verified};
use crate::model::{ExecTarget, Holder, Secret, Target, TokenId};
use crate::process_group::kill_group;

/// The literal an argument carries where the value goes when `secret_in_argv` is set.
pub const ARGV_PLACEHOLDER: &str = "{{ secret }}";

/// The variables of tokensmith's environment every command gets; anything else only when the
/// target names it in `env:`.
pub const INHERITED: [&str; 4] = ["PATH", "HOME", "LANG", "TZ"];

/// How much of stderr an error quotes.
const STDERR_TAIL: usize = 2000;

/// How long to wait for output pipes after the command exited (a daemonized grandchild may keep
/// them open).
const PIPE_GRACE: Duration = Duration::from_secs(5);

struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// How the value reaches the command.
struct Feed<'a> {
    env: Vec<(String, String)>,
    stdin: Option<&'a str>,
}

pub(super) async fn deliver(
    ctx: &DeliveryContext,
    target: &Target,
    e: &ExecTarget,
    value: &Secret<String>,
    record: &Record,
) -> Result<Delivered, DeliverError> {
    let content = |reason: String| DeliverError::Content {
        address: target.address(),
        reason,
    };
    if e.command.is_empty() {
        return Err(content("`command` is empty".to_owned()));
    }
    let placeholders = e
        .command
        .iter()
        .filter(|a| a.contains(ARGV_PLACEHOLDER))
        .count();
    if placeholders > 0 && !e.secret_in_argv {
        return Err(content(format!(
            "an argument contains `{ARGV_PLACEHOLDER}` but `secret_in_argv` is not set; prefer `secret_env` or `secret_stdin` (argv is visible to every user of the machine)"
        )));
    }
    if e.secret_in_argv && placeholders == 0 {
        return Err(content(format!(
            "`secret_in_argv` is set but no argument contains `{ARGV_PLACEHOLDER}`"
        )));
    }
    if e.secret_env.is_none() && !e.secret_stdin && !e.secret_in_argv {
        return Err(content(
            "the command is never given the value; set `secret_env` or `secret_stdin`".to_owned(),
        ));
    }
    let argv: Vec<String> = if e.secret_in_argv {
        e.command
            .iter()
            .map(|a| a.replace(ARGV_PLACEHOLDER, value.expose()))
            .collect()
    } else {
        e.command.clone()
    };
    let mut env = record_env(record);
    if let Some(name) = &e.secret_env {
        env.push((name.clone(), value.expose().clone()));
    }
    let feed = Feed {
        env,
        stdin: e.secret_stdin.then(|| value.expose().as_str()),
    };
    let out = run(ctx, target, e, &argv, feed).await?;
    check_status(target, &e.command[0], &out, Some(value))?;
    Ok(Delivered {
        address: target.address(),
        holder: record.holder(),
        changed: true,
        notes: Vec::new(),
        warnings: Vec::new(),
    })
}

pub(super) async fn read_holder(
    ctx: &DeliveryContext,
    target: &Target,
    e: &ExecTarget,
) -> Result<Holder, DeliverError> {
    let Some(read) = e.read_command.as_ref().filter(|c| !c.is_empty()) else {
        return Ok(Holder::WriteOnly);
    };
    let feed = Feed {
        env: Vec::new(),
        stdin: None,
    };
    let out = run(ctx, target, e, read, feed).await?;
    check_status(target, &read[0], &out, None)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let text = text.trim();
    if text.is_empty() {
        return Ok(Holder::Unknown);
    }
    if let Some(parsed) = Record::decode(text) {
        return Ok(parsed.into_holder());
    }
    // A command that prints the token itself (`oneagentctl --get-tenant-token`): keep only its id
    // or fingerprint.
    if TokenId::of_secret(text).is_some() || !text.contains(char::is_whitespace) {
        return Ok(holder_from(Some(text), None));
    }
    Err(DeliverError::Command {
        address: target.address(),
        reason: format!(
            "`{}` printed something that is neither a token id nor `tenant:<fingerprint>` (not shown, it may be secret)",
            read[0]
        ),
    })
}

pub(super) async fn verify(
    ctx: &DeliveryContext,
    target: &Target,
    e: &ExecTarget,
    record: &Record,
) -> Result<Verified, DeliverError> {
    let mut verified = Verified::Unverifiable;
    if let Some(cmd) = e.verify_command.as_ref().filter(|c| !c.is_empty()) {
        let feed = Feed {
            env: record_env(record),
            stdin: None,
        };
        let out = run(ctx, target, e, cmd, feed).await?;
        check_status(target, &cmd[0], &out, None)?;
        verified = Verified::VerifyCommand;
    }
    if e.read_command.as_ref().is_some_and(|c| !c.is_empty()) {
        let found = read_holder(ctx, target, e).await?;
        let expected = record.holder();
        if !same_token(&found, &expected) {
            return Err(DeliverError::Mismatch {
                address: target.address(),
                expected: HolderText(expected),
                found: HolderText(found),
            });
        }
        verified = Verified::ReadBack(found);
    }
    Ok(verified)
}

/// The `TOKENSMITH_*` variables describing `record`.
fn record_env(record: &Record) -> Vec<(String, String)> {
    let mut env = vec![(exec_env::RECORD.to_owned(), record.encode())];
    match record {
        Record::Token { id, .. } => {
            env.push((exec_env::TOKEN_ID.to_owned(), id.to_string()));
            if let Some((_, until)) = record.encode().split_once(" until ") {
                env.push((exec_env::TOKEN_EXPIRES.to_owned(), until.to_owned()));
            }
        }
        Record::Tenant { fingerprint, .. } => {
            env.push((exec_env::TENANT_FINGERPRINT.to_owned(), fingerprint.clone()));
            if let Some((_, since)) = record.encode().split_once(" since ") {
                env.push((exec_env::TENANT_SINCE.to_owned(), since.to_owned()));
            }
        }
    }
    env
}

fn program(ctx: &DeliveryContext, name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if name.contains('/') && p.is_relative() {
        ctx.base_dir.join(p)
    } else {
        p
    }
}

async fn run(
    ctx: &DeliveryContext,
    target: &Target,
    e: &ExecTarget,
    argv: &[String],
    feed: Feed<'_>,
) -> Result<Output, DeliverError> {
    let timeout = e
        .timeout
        .map(|d| Duration::from_secs(d.as_secs().max(0) as u64))
        .unwrap_or(ctx.exec_timeout);
    let name = argv[0].clone();
    let mut cmd = tokio::process::Command::new(program(ctx, &name));
    cmd.args(&argv[1..])
        .current_dir(&ctx.base_dir)
        .env_clear()
        .envs(passed_through(e))
        .envs(feed.env.iter().map(|(k, v)| (k, v)))
        .stdin(if feed.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|err| DeliverError::Command {
        address: target.address(),
        reason: format!("cannot start `{name}`: {err}; check the command path"),
    })?;
    let pid = child.id();
    if let (Some(input), Some(mut stdin)) = (feed.stdin, child.stdin.take()) {
        let bytes = input.as_bytes().to_vec();
        // A command that exits without reading its input is not an error here; its exit status
        // tells.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        });
    }
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let read_out = tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf).await;
        }
        buf
    });
    let read_err = tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf).await;
        }
        buf
    });
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(|err| DeliverError::Command {
            address: target.address(),
            reason: format!("waiting for `{name}` failed: {err}"),
        })?,
        Err(_) => {
            kill_group(pid);
            let _ = child.kill().await;
            read_out.abort();
            read_err.abort();
            return Err(DeliverError::Timeout {
                address: target.address(),
                program: name,
                after: timeout.as_secs(),
            });
        }
    };
    let collect = async { (read_out.await, read_err.await) };
    let (out, err) = match tokio::time::timeout(PIPE_GRACE, collect).await {
        Ok((o, e)) => (o.unwrap_or_default(), e.unwrap_or_default()),
        Err(_) => {
            // Something the command started still holds its output open.
            kill_group(pid);
            (Vec::new(), Vec::new())
        }
    };
    Ok(Output {
        status,
        stdout: out,
        stderr: err,
    })
}

/// The variables of tokensmith's own environment a command of `e` sees: [`INHERITED`] and the
/// names in `e.env`, where set.
fn passed_through(e: &ExecTarget) -> Vec<(String, std::ffi::OsString)> {
    INHERITED
        .iter()
        .copied()
        .chain(e.env.iter().map(String::as_str))
        .filter_map(|name| {
            crate::cli::env_vars::passed_to_command(name).map(|v| (name.to_owned(), v))
        })
        .collect()
}

/// Run `argv` the way exec targets' commands run (no shell, in the spec's directory, its own
/// process group, `timeout` or the context's), given nothing on stdin and no value: for
/// follow-up commands such as a file target's `restart`. A non-zero exit is an error quoting the
/// end of stderr with `redact_value` (and anything shaped like a token) redacted.
pub(super) async fn run_follow_up(
    ctx: &DeliveryContext,
    target: &Target,
    argv: &[String],
    timeout: Option<crate::model::SpecDuration>,
    redact_value: &Secret<String>,
) -> Result<(), DeliverError> {
    let Some(name) = argv.first().filter(|n| !n.trim().is_empty()) else {
        return Err(DeliverError::Content {
            address: target.address(),
            reason: "the command is empty".to_owned(),
        });
    };
    let e = ExecTarget {
        command: argv.to_vec(),
        timeout,
        ..ExecTarget::default()
    };
    let feed = Feed {
        env: Vec::new(),
        stdin: None,
    };
    let out = run(ctx, target, &e, argv, feed).await?;
    check_status(target, name, &out, Some(redact_value))
}

fn check_status(
    target: &Target,
    name: &str,
    out: &Output,
    secret: Option<&Secret<String>>,
) -> Result<(), DeliverError> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = quote_output(&out.stderr, secret);
    let status = match out.status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_owned(),
    };
    Err(DeliverError::Command {
        address: target.address(),
        reason: if stderr.is_empty() {
            format!("`{name}` {status}")
        } else {
            format!("`{name}` {status}: {stderr}")
        },
    })
}

/// The tail of a command's output, safe to put in an error: the secret redacted, and any word
/// shaped like a full `dt0…` token cut to its public id.
fn quote_output(bytes: &[u8], secret: Option<&Secret<String>>) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = match secret {
        Some(s) => redact(&text, s),
        None => text.into_owned(),
    };
    let text: String = text
        .split_inclusive(char::is_whitespace)
        .map(|word| {
            let trimmed = word.trim_end();
            match TokenId::of_secret(
                trimmed.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '.'),
            ) {
                Some(id) => format!("{id}.<redacted>{}", &word[trimmed.len()..]),
                None => word.to_owned(),
            }
        })
        .collect();
    let text = text.trim();
    if text.len() > STDERR_TAIL {
        let mut start = text.len() - STDERR_TAIL;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &text[start..])
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_output_never_carries_tokens() {
        let secret = Secret::from("opaque-tenant-value");
        let out = quote_output(
            b"error: bad opaque-tenant-value and dt0c01.PUBLIC.PRIVATEPART given\n",
            Some(&secret),
        );
        assert_eq!(
            out,
            "error: bad <redacted> and dt0c01.PUBLIC.<redacted> given"
        );
    }
}

//! An open tenant token rotation in words, for the human and Markdown plans: since when, who
//! started it, which targets confirmed the new token and which not, which cannot be read back,
//! and when finish is due. Secret-free: targets by address, times in RFC 3339.

use crate::model::encode::rfc3339 as ts;
use crate::plan::OpenTenantRotation;

fn list(addresses: &[crate::model::TargetAddress]) -> String {
    if addresses.is_empty() {
        return "none".to_owned();
    }
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines describing `r`; the first is the headline.
pub(crate) fn open_rotation_lines(r: &OpenTenantRotation) -> Vec<String> {
    let who = if r.started_by_tokensmith {
        "started by tokensmith"
    } else {
        "started outside tokensmith"
    };
    let since = r.since.map_or_else(|| "an unknown time".to_owned(), ts);
    let mut lines = vec![format!(
        "open tenant token rotation in {} since {since} ({who}); both tenant tokens are valid until it is finished",
        r.environment
    )];
    let total = r.confirmed.len() + r.unconfirmed.len();
    lines.push(format!(
        "confirmed the new token: {} of {total} ({})",
        r.confirmed.len(),
        list(&r.confirmed)
    ));
    lines.push(format!("not confirmed yet: {}", list(&r.unconfirmed)));
    if !r.unverifiable.is_empty() {
        lines.push(format!(
            "unverifiable (write-only; confirmed only by their command succeeding in this rotation): {}",
            list(&r.unverifiable)
        ));
    }
    if let Some(due) = r.finish_due {
        lines.push(format!("finish due: {}", ts(due)));
    }
    if !r.status_endpoint {
        lines.push(
            "Dynatrace has no rotation status endpoint here; tokensmith's record tells".to_owned(),
        );
    }
    lines.push(format!("next: {}", r.next));
    lines
}

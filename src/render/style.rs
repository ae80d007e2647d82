//! ANSI styling that is a no-op when colour is off, and the symbols shared by the renderers.

use crate::plan::{Action, Step};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    pub fn green(self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn yellow(self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn red(self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn magenta(self, s: &str) -> String {
        self.paint("35", s)
    }
    pub fn cyan(self, s: &str) -> String {
        self.paint("36", s)
    }
    pub fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }

    /// The step's symbol, coloured.
    pub fn symbol(self, step: &Step) -> String {
        let sym = symbol(step);
        match &step.action {
            Action::Create { replaces: None, .. } | Action::Adopt { .. } => self.green(sym),
            Action::Create { .. } | Action::TenantStart => self.magenta(sym),
            Action::Update { .. } => self.yellow(sym),
            Action::Deliver { .. } => self.cyan(sym),
            Action::Disable { .. }
            | Action::Delete { .. }
            | Action::TenantFinish
            | Action::TenantCancel => self.red(sym),
        }
    }
}

/// `+` create, `~` update/adopt, `±` rotate/replace (and tenant rotation), `-` revoke/delete,
/// `>` deliver.
pub(crate) fn symbol(step: &Step) -> &'static str {
    match &step.action {
        Action::Create { replaces: None, .. } => "+",
        Action::Create { .. } | Action::TenantStart => "±",
        Action::Update { .. } | Action::Adopt { .. } => "~",
        Action::Deliver { .. } => ">",
        Action::Disable { .. }
        | Action::Delete { .. }
        | Action::TenantFinish
        | Action::TenantCancel => "-",
    }
}

/// A one-line description of what a step does.
pub(crate) fn headline(step: &Step) -> String {
    let home = crate::plan::home_label(&step.home);
    let what = match &step.key {
        Some(k) => format!("{} {k}", step.kind),
        None => step.kind.to_string(),
    };
    match &step.action {
        Action::Create {
            generation,
            replaces: None,
            ..
        } => format!("create {what} in {home} (generation {generation})"),
        Action::Create {
            generation,
            replaces: Some(old),
            ..
        } => format!("rotate {what} in {home}: {old} → generation {generation}"),
        Action::Update { token, .. } => format!("update {what} in {home} ({token})"),
        Action::Adopt { token, .. } => format!("adopt {token} as {what} in {home}"),
        Action::Deliver { address, .. } => format!("deliver {what} in {home} to {address}"),
        Action::Disable { token, .. } => format!("disable {what} in {home}: {token}"),
        Action::Delete { token, .. } => format!("delete {what} in {home}: {token}"),
        Action::TenantStart => format!("start tenant token rotation in {home}"),
        Action::TenantFinish => format!("finish tenant token rotation in {home}"),
        Action::TenantCancel => format!("cancel tenant token rotation in {home}"),
    }
}

/// Scope changes as `similar` line diffs: (`-`|`+`|` `, scope).
pub(crate) fn scope_diff<'a>(
    from: impl IntoIterator<Item = &'a crate::model::Scope>,
    to: impl IntoIterator<Item = &'a crate::model::Scope>,
) -> Vec<(char, String)> {
    let join = |it: &mut dyn Iterator<Item = &'a crate::model::Scope>| {
        it.map(|s| format!("{s}\n")).collect::<String>()
    };
    let old = join(&mut from.into_iter());
    let new = join(&mut to.into_iter());
    similar::TextDiff::from_lines(&old, &new)
        .iter_all_changes()
        .map(|c| {
            let sign = match c.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            (sign, c.value().trim_end().to_owned())
        })
        .collect()
}

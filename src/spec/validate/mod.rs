//! The semantic rules of a spec: what makes a well-typed file still wrong.
//!
//! Two kinds of check live here. Value checks ([`values`], [`targets`]) look at one value (a
//! URL, a scope, a delivery target) and return [`Finding`]s, which the resolver places at the
//! value's position. Cross checks ([`cross`]) look at the whole resolved [`crate::model::Desired`]
//! with the positions the resolver recorded ([`Sites`]): duplicate keys after `for_each`, a target
//! written by two tokens, the platform-token limit per owner. Nothing here reads files or the
//! network.

pub mod cross;
pub mod targets;
pub mod values;

pub use cross::{cross_check, Sites, TokenSite, PLATFORM_TOKENS_PER_OWNER};
pub use targets::check_target;
pub use values::*;

use super::diagnostic::{Diagnostic, Severity, SourceFile, Span};

/// One problem with a value, before it is given a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    /// The field of a larger value (a delivery target) the finding is about, so the resolver
    /// can point at that field instead of the whole value.
    pub field: Option<&'static str>,
}

impl From<super::template::TemplateError> for Finding {
    fn from(e: super::template::TemplateError) -> Finding {
        Finding {
            severity: Severity::Error,
            message: e.message,
            help: e.help,
            field: None,
        }
    }
}

impl Finding {
    pub fn error(message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            message: message.into(),
            help: None,
            field: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            message: message.into(),
            help: None,
            field: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Finding {
        self.help = Some(help.into());
        self
    }

    /// Names the field of a larger value that the finding is about.
    pub fn field(mut self, field: &'static str) -> Finding {
        self.field = Some(field);
        self
    }

    /// The finding as a diagnostic at `span`.
    pub fn at(self, source: &SourceFile, span: Span) -> Diagnostic {
        let mut d = match self.severity {
            Severity::Error => source.error(span, self.message),
            Severity::Warning => source.warning(span, self.message),
        };
        if let Some(help) = self.help {
            d = d.help(help);
        }
        d
    }
}

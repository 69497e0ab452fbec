//! The invitation text: a zh-TW template with `{phase}`, `{opens}`, `{closes}`, `{url}`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::domain::TAIWAN;

/// The built-in text, kept in its own file so that wording changes are reviewed as text.
const BUILTIN: &str = include_str!("invitation.zh-TW.txt");

/// How times appear in the text: `7/13 10:00`, Taiwan local time. Short because an SMS
/// in Chinese holds only 70 characters per segment.
const WHEN: &[BorrowedFormatItem<'static>] =
    format_description!("[month padding:none]/[day padding:none] [hour]:[minute]");

/// Why a template was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read SMS template {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A typo such as `{phse}` would otherwise reach a million phones verbatim.
    #[error(
        "unknown placeholder {{{0}}} in SMS template (known: {{phase}}, {{opens}}, {{closes}}, {{url}})"
    )]
    UnknownPlaceholder(String),
    #[error("unclosed {{ in SMS template at byte {0}")]
    Unclosed(usize),
    #[error("stray }} in SMS template at byte {0}")]
    Stray(usize),
    #[error("SMS template is empty")]
    Empty,
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Phase,
    Opens,
    Closes,
    Url,
}

/// The invitation text, parsed once at load so that rendering cannot fail and a bad
/// custom file stops the server at start rather than at the first send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// The built-in zh-TW invitation.
    pub fn builtin() -> Self {
        BUILTIN
            .parse()
            .expect("the built-in template uses only known placeholders (tested)")
    }

    /// A custom template from a UTF-8 file; trailing whitespace (the file's last
    /// newline) is not part of the text.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TemplateError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.to_owned(),
            source,
        })?;
        text.parse()
    }

    /// The text for one person: times in Taiwan local time, e.g. `7/13 10:00`.
    pub fn render(
        &self,
        phase_name: &str,
        opens_at: OffsetDateTime,
        closes_at: OffsetDateTime,
        url: &str,
    ) -> String {
        let when = |t: OffsetDateTime| t.to_offset(TAIWAN).format(WHEN).unwrap_or_default();
        let (opens, closes) = (when(opens_at), when(closes_at));
        let mut out = String::with_capacity(160);
        for part in &self.parts {
            out.push_str(match part {
                Part::Text(t) => t,
                Part::Phase => phase_name,
                Part::Opens => &opens,
                Part::Closes => &closes,
                Part::Url => url,
            });
        }
        out
    }
}

impl FromStr for Template {
    type Err = TemplateError;

    /// Parses template text: `{name}` is a placeholder and must be one of the four known
    /// names; a `{` or `}` outside a placeholder is refused rather than guessed at.
    fn from_str(text: &str) -> Result<Self, TemplateError> {
        let text = text.trim_end();
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut rest = text;
        let mut at = 0;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(TemplateError::Stray(at + open));
            }
            let close = rest[open..]
                .find('}')
                .ok_or(TemplateError::Unclosed(at + open))?
                + open;
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            parts.push(match &rest[open + 1..close] {
                "phase" => Part::Phase,
                "opens" => Part::Opens,
                "closes" => Part::Closes,
                "url" => Part::Url,
                other => return Err(TemplateError::UnknownPlaceholder(other.to_owned())),
            });
            at += close + 1;
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use time::macros::datetime;

    use super::*;

    #[test]
    fn builtin_renders_2021_phase_two_window_in_taiwan_time() {
        let text = Template::builtin().render(
            "第二期",
            datetime!(2021-07-13 10:00 +08:00),
            datetime!(2021-07-15 17:00 +08:00),
            "https://1922.gov.tw",
        );
        assert_eq!(
            text,
            "【疫苗預約】您已符合第二期疫苗接種資格，請於7/13 10:00至7/15 17:00至https://1922.gov.tw預約接種時段。"
        );
    }

    #[test]
    fn times_are_shown_at_taiwan_offset_whatever_offset_they_carry() {
        let t = Template::from_str("{opens}|{closes}").expect("valid");
        // 02:00 UTC is 10:00 in Taiwan; 16:05 UTC on 7/14 is 00:05 on 7/15.
        let text = t.render(
            "",
            datetime!(2021-07-13 02:00 UTC),
            datetime!(2021-07-14 16:05 UTC),
            "",
        );
        assert_eq!(text, "7/13 10:00|7/15 00:05");
    }

    #[test]
    fn custom_file_may_repeat_and_omit_placeholders() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(f, "{{phase}}：{{url}}（{{phase}}）").expect("write");
        let t = Template::from_file(f.path()).expect("valid template");
        let text = t.render(
            "第一期",
            datetime!(2021-07-13 10:00 +08:00),
            datetime!(2021-07-15 17:00 +08:00),
            "u",
        );
        assert_eq!(text, "第一期：u（第一期）");
    }

    #[test]
    fn unknown_placeholder_in_custom_file_is_refused_at_load() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        write!(f, "您已符合{{phse}}資格").expect("write");
        let err = Template::from_file(f.path()).expect_err("typo refused");
        assert!(
            matches!(&err, TemplateError::UnknownPlaceholder(name) if name == "phse"),
            "{err}"
        );
        assert!(err.to_string().contains("{phse}"), "{err}");
    }

    #[test]
    fn unbalanced_braces_are_refused() {
        assert!(matches!(
            Template::from_str("請於{opens 預約"),
            Err(TemplateError::Unclosed(_))
        ));
        assert!(matches!(
            Template::from_str("請於} 預約"),
            Err(TemplateError::Stray(_))
        ));
        assert!(matches!(
            Template::from_str("  \n"),
            Err(TemplateError::Empty)
        ));
    }

    #[test]
    fn missing_file_names_its_path() {
        let err = Template::from_file("/nonexistent/invitation.txt").expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/invitation.txt"),
            "{err}"
        );
    }
}

//! Matching certificate identities (SAN) and OIDC issuers.
//!
//! Regular expressions match the whole value: `--certificate-identity-regexp 'a@b.com'` does
//! not accept `xa@b.com.evil`. cosign (Go's `regexp.MatchString`) matches anywhere in the
//! value unless the pattern is anchored by hand — a known hazard; sigil anchors for you.

use std::fmt;

/// An exact value or an anchored regular expression.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The value must equal this string.
    Exact(String),
    /// The whole value must match this expression (compiled as `^(?:RE)$`).
    Regex {
        /// As the user wrote it.
        source: String,
        /// Anchored.
        compiled: regex::Regex,
    },
}

impl Matcher {
    /// An anchored regular expression.
    pub fn regex(source: &str) -> Result<Self, regex::Error> {
        let compiled = regex::RegexBuilder::new(&format!("^(?:{source})$")).size_limit(1 << 20).build()?;
        Ok(Matcher::Regex { source: source.to_owned(), compiled })
    }

    /// True when `value` satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex { compiled, .. } => compiled.is_match(value),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s:?}"),
            Matcher::Regex { source, .. } => write!(f, "/^(?:{source})$/"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::regex(r"https://github\.com/org/.*").unwrap();
        assert!(m.matches("https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main"));
        assert!(!m.matches("evil https://github.com/org/repo"));
        let m = Matcher::regex("a@b.com").unwrap();
        assert!(!m.matches("xa@b.com"));
        assert!(!m.matches("a@b.comx"));
        // Alternation is grouped, so anchoring covers every branch.
        let m = Matcher::regex("a|b").unwrap();
        assert!(!m.matches("ab"));
        assert!(Matcher::Exact("x".into()).matches("x"));
    }
}

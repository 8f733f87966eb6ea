//! The portal's rules without I/O: what a session may do (its capabilities), and the tokens of links and sessions.

use std::fmt;
use std::str::FromStr;

/// What a portal session may do, beyond reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// See the tenant's endpoints, deliveries and catalogue; every session has it.
    Read,
    /// Add, change, disable and delete endpoints, and send test events.
    ManageEndpoints,
    /// Reveal and rotate signing secrets.
    SeeSecrets,
    /// Retry deliveries and recover an endpoint's failed ones.
    Retry,
}

impl Capability {
    pub const ALL: [Capability; 4] =
        [Capability::Read, Capability::ManageEndpoints, Capability::SeeSecrets, Capability::Retry];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Read => "read",
            Capability::ManageEndpoints => "manage_endpoints",
            Capability::SeeSecrets => "see_secrets",
            Capability::Retry => "retry",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {value:?}; use read, manage_endpoints, see_secrets or retry")]
pub struct CapabilityError {
    pub value: String,
}

impl FromStr for Capability {
    type Err = CapabilityError;

    fn from_str(value: &str) -> Result<Self, CapabilityError> {
        Capability::ALL
            .into_iter()
            .find(|capability| capability.as_str() == value)
            .ok_or_else(|| CapabilityError { value: value.to_owned() })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A set of capabilities as stored: sorted, without repeats, `read` always in it.
pub fn normalise(capabilities: &[Capability]) -> Vec<Capability> {
    let mut all: Vec<Capability> = capabilities.iter().copied().chain([Capability::Read]).collect();
    all.sort();
    all.dedup();
    all
}

/// A new link or session token: 40 random base62 characters after its prefix (`hpl_` a link, `hps_` a
/// session). Only its hash (`crate::secret::hash_api_key`) is stored.
pub fn new_token(prefix: &str) -> String {
    crate::secret::generate_api_key(prefix)
}

/// How the portal looks for a session: its name in the header, its accent colour, light or dark. What a link
/// leaves out comes from the operator's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent: Option<String>,
    /// `light` or `dark`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// An `https://` address of an image shown before the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThemeError {
    #[error("theme name must be 1 to 64 characters without control characters")]
    Name,
    #[error("theme accent {value:?} is not a colour; write it as #rrggbb, such as #2456c8")]
    Accent { value: String },
    #[error("theme mode {value:?} is unknown; use light or dark")]
    Mode { value: String },
    #[error("theme logo {value:?} is not an https:// address of an image (at most 2048 characters)")]
    Logo { value: String },
}

impl Theme {
    /// Checks each part given.
    pub fn check(&self) -> Result<(), ThemeError> {
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control))
        {
            return Err(ThemeError::Name);
        }
        if let Some(accent) = &self.accent
            && accent_hex(accent).is_none()
        {
            return Err(ThemeError::Accent { value: accent.clone() });
        }
        if let Some(mode) = &self.mode
            && !matches!(mode.as_str(), "light" | "dark")
        {
            return Err(ThemeError::Mode { value: mode.clone() });
        }
        if let Some(logo) = &self.logo
            && !logo_allowed(logo)
        {
            return Err(ThemeError::Logo { value: logo.chars().take(100).collect() });
        }
        Ok(())
    }

    /// This theme, with what it leaves out taken from `defaults`.
    pub fn over(&self, defaults: &Theme) -> Theme {
        Theme {
            name: self.name.clone().or_else(|| defaults.name.clone()),
            accent: self.accent.clone().or_else(|| defaults.accent.clone()),
            mode: self.mode.clone().or_else(|| defaults.mode.clone()),
            logo: self.logo.clone().or_else(|| defaults.logo.clone()),
        }
    }
}

/// Whether a logo's address may be shown: `https://` with a host, at most 2048 characters, and nothing that could
/// leave an HTML attribute or start a second address (quotes, angle brackets, spaces, control characters).
fn logo_allowed(logo: &str) -> bool {
    let Some(rest) = logo.strip_prefix("https://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    logo.len() <= 2048
        && !host.is_empty()
        && !host.contains('@')
        && !logo.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '\\'))
}

/// The six hex digits of a `#rrggbb` colour, lowercase; `None` for anything else.
pub fn accent_hex(colour: &str) -> Option<String> {
    let hex = colour.strip_prefix('#').unwrap_or(colour);
    (hex.len() == 6 && hex.bytes().all(|byte| byte.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
}

/// The red, green and blue of a `#rrggbb` colour (see `accent_hex`).
pub fn rgb(hex: &str) -> Option<[u8; 3]> {
    let hex = accent_hex(hex)?;
    let channel = |at: usize| u8::from_str_radix(&hex[at..at + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// A colour's relative luminance, as WCAG defines it.
fn luminance(colour: [u8; 3]) -> f64 {
    let channel = |value: u8| {
        let value = f64::from(value) / 255.0;
        if value <= 0.039_28 { value / 12.92 } else { ((value + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * channel(colour[0]) + 0.7152 * channel(colour[1]) + 0.0722 * channel(colour[2])
}

/// The contrast ratio of two colours, from 1 to 21.
pub fn contrast(one: [u8; 3], other: [u8; 3]) -> f64 {
    let (one, other) = (luminance(one), luminance(other));
    (one.max(other) + 0.05) / (one.min(other) + 0.05)
}

/// Black or white, whichever reads better on `background` (text on an accent-coloured button).
pub fn text_on(background: [u8; 3]) -> [u8; 3] {
    if contrast([0, 0, 0], background) >= contrast([255, 255, 255], background) { [0, 0, 0] } else { [255, 255, 255] }
}

/// `colour` moved towards black or white (whichever is further from `background`) until it reads on `background`
/// at `ratio` at least: an accent as the colour of links, whatever accent and page a theme gives.
pub fn readable_on(colour: [u8; 3], background: [u8; 3], ratio: f64) -> [u8; 3] {
    let target = text_on(background);
    let mut mixed = colour;
    for step in 1..=20 {
        if contrast(mixed, background) >= ratio {
            break;
        }
        let share = f64::from(step) / 20.0;
        mixed = [0, 1, 2].map(|at| {
            let value = f64::from(colour[at]) * (1.0 - share) + f64::from(target[at]) * share;
            value.round().clamp(0.0, 255.0) as u8
        });
    }
    mixed
}

/// A colour as CSS writes it.
pub fn css_colour(colour: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", colour[0], colour[1], colour[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_read_back_and_always_include_read() {
        for capability in Capability::ALL {
            assert_eq!(capability.as_str().parse::<Capability>(), Ok(capability));
        }
        assert!("admin".parse::<Capability>().unwrap_err().to_string().contains("manage_endpoints"));
        assert_eq!(normalise(&[Capability::Retry, Capability::Retry]), [Capability::Read, Capability::Retry]);
        assert!(new_token("hpl_").starts_with("hpl_") && new_token("hpl_").len() == 44);
    }

    #[test]
    fn colours_are_made_readable_whatever_the_accent() {
        let white = [255, 255, 255];
        let dark = rgb("#18181b").unwrap();
        assert_eq!(rgb("#2456C8"), Some([0x24, 0x56, 0xc8]));
        assert!((contrast([0, 0, 0], white) - 21.0).abs() < 1e-9);
        assert_eq!(text_on(rgb("#ff6600").unwrap()), [0, 0, 0], "black reads better on orange");
        assert_eq!(text_on(rgb("#2456c8").unwrap()), white);
        for accent in ["#2456c8", "#ff6600", "#ffff00", "#000000", "#777777"] {
            let accent = rgb(accent).unwrap();
            for page in [white, dark] {
                assert!(contrast(readable_on(accent, page, 4.5), page) >= 4.5, "{accent:?} on {page:?}");
            }
        }
        assert_eq!(readable_on([0x24, 0x56, 0xc8], white, 4.5), [0x24, 0x56, 0xc8], "already readable: unchanged");
        assert_eq!(css_colour([255, 102, 0]), "#ff6600");
    }

    #[test]
    fn themes_are_checked_and_fall_back_on_the_operators() {
        let theme = |name: &str, accent: &str, mode: &str| Theme {
            name: Some(name.into()),
            accent: Some(accent.into()),
            mode: Some(mode.into()),
            logo: None,
        };
        assert_eq!(theme("Heron", "#2456C8", "dark").check(), Ok(()));
        assert_eq!(theme("", "#2456c8", "dark").check(), Err(ThemeError::Name));
        assert!(matches!(theme("Heron", "red", "dark").check(), Err(ThemeError::Accent { .. })));
        assert!(matches!(theme("Heron", "#2456c8;x", "dark").check(), Err(ThemeError::Accent { .. })));
        assert!(matches!(theme("Heron", "#2456c8", "blue").check(), Err(ThemeError::Mode { .. })));
        let logo = |logo: &str| Theme { logo: Some(logo.into()), ..Theme::default() }.check();
        assert_eq!(logo("https://cdn.heron.example/logo.svg?v=2"), Ok(()));
        for refused in [
            "http://cdn.heron.example/logo.svg",
            "javascript:alert(1)",
            "https://",
            "https:///logo.png",
            "https://user@cdn.example/logo.png",
            "https://cdn.example/a b.png",
            "https://cdn.example/\"onerror=\"x",
            "data:image/png;base64,AAAA",
        ] {
            assert!(matches!(logo(refused), Err(ThemeError::Logo { .. })), "{refused}");
        }
        assert!(logo(&format!("https://cdn.example/{}", "a".repeat(2048))).is_err());
        assert_eq!(accent_hex("#2456C8").as_deref(), Some("2456c8"));
        let link = Theme { name: Some("Heron".into()), ..Theme::default() };
        let operator = theme("Hookline", "#000000", "light");
        assert_eq!(link.over(&operator), theme("Heron", "#000000", "light"));
    }
}

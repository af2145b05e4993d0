//! Opt-outs, the pure part: the reasons a number is on an account's suppression list, the
//! default keywords, and whether an inbound text is one of them. No I/O.
//!
//! A text matches a keyword when it is exactly that keyword once case, accents, surrounding
//! spaces and surrounding punctuation are set aside: `"  stop! "` and `"Bája."` match `STOP`
//! and `BAJA`; `"please stop"` matches nothing.

/// Opt-out keywords an account has until it configures its own.
pub const DEFAULT_OPT_OUT: &[&str] = &["STOP", "BAJA", "PARAR", "CANCELAR", "UNSUBSCRIBE", "SAIR"];
/// Opt-in keywords an account has until it configures its own.
pub const DEFAULT_OPT_IN: &[&str] = &["START", "ALTA"];

/// Meta's label for the opt-out quick-reply button it adds to marketing templates.
pub const META_STOP_BUTTON_LABELS: &[&str] = &["Stop promotions", "Stop Promotions"];

/// The most keywords one list may hold, and the longest keyword.
pub const MAX_KEYWORDS: usize = 50;
pub const MAX_KEYWORD_CHARS: usize = 40;

/// Why a number is on the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
pub enum Reason {
    /// The user wrote one of the account's opt-out keywords.
    #[serde(rename = "keyword")]
    Keyword,
    /// The user clicked a marketing template's opt-out button.
    #[serde(rename = "button")]
    Button,
    /// Meta refused a send with 131050 (the user stopped marketing messages).
    #[serde(rename = "meta_131050")]
    Meta131050,
    /// The integrator or the operator added it.
    #[serde(rename = "api")]
    Api,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::Keyword,
        Reason::Button,
        Reason::Meta131050,
        Reason::Api,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Keyword => "keyword",
            Reason::Button => "button",
            Reason::Meta131050 => "meta_131050",
            Reason::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Added by plantilla itself (an inbound keyword, a button, Meta's error), not by a
    /// person: an opt-in keyword removes only such entries.
    pub fn is_automatic(self) -> bool {
        !matches!(self, Reason::Api)
    }
}

/// Folds one character: lowercase, with the accent of a Latin letter removed. Combining marks
/// (a text in decomposed form) fold to nothing.
fn fold_char(c: char, out: &mut String) {
    if ('\u{0300}'..='\u{036F}').contains(&c) {
        return;
    }
    let base = match c {
        'À'..='Å' | 'à'..='å' | 'Ā' | 'ā' | 'Ă' | 'ă' | 'Ą' | 'ą' => 'a',
        'Ç' | 'ç' | 'Ć' | 'ć' | 'Č' | 'č' => 'c',
        'È'..='Ë' | 'è'..='ë' | 'Ē' | 'ē' | 'Ė' | 'ė' | 'Ę' | 'ę' | 'Ě' | 'ě' => 'e',
        'Ì'..='Ï' | 'ì'..='ï' | 'Ī' | 'ī' | 'Į' | 'į' => 'i',
        'Ñ' | 'ñ' | 'Ń' | 'ń' | 'Ň' | 'ň' => 'n',
        'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' | 'Ō' | 'ō' | 'Ő' | 'ő' => 'o',
        'Ù'..='Ü' | 'ù'..='ü' | 'Ū' | 'ū' | 'Ů' | 'ů' | 'Ű' | 'ű' => 'u',
        'Ý' | 'ý' | 'ÿ' | 'Ÿ' => 'y',
        'Š' | 'š' | 'Ś' | 'ś' => 's',
        'Ž' | 'ž' | 'Ź' | 'ź' | 'Ż' | 'ż' => 'z',
        _ => {
            out.extend(c.to_lowercase());
            return;
        }
    };
    out.push(base);
}

/// A text as keywords are compared: surrounding white space and punctuation (and symbols such
/// as emoji) dropped, lowercase, accents removed. Inner spaces are kept, collapsed to one.
pub fn normalize(text: &str) -> String {
    let trimmed = text.trim_matches(|c: char| !c.is_alphanumeric());
    let mut out = String::with_capacity(trimmed.len());
    let mut space = false;
    for c in trimmed.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        fold_char(c, &mut out);
    }
    out
}

/// Whether `text` is exactly one of `keywords` (as [`normalize`] compares them).
pub fn matches<S: AsRef<str>>(text: &str, keywords: &[S]) -> bool {
    let text = normalize(text);
    !text.is_empty() && keywords.iter().any(|k| normalize(k.as_ref()) == text)
}

/// What an inbound text or button means for the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Add the number, for this reason.
    OptOut(Reason),
    /// Remove an automatic entry.
    OptIn,
}

/// What an inbound message means, given the account's keywords: a text that is an opt-out
/// keyword opts out (`keyword`); a button reply to a MARKETING template whose text or payload
/// is an opt-out keyword or Meta's "Stop promotions" label opts out (`button`); a text (or a
/// button) that is an opt-in keyword opts in. Anything else means nothing.
pub fn intent<S: AsRef<str>>(
    text: Option<&str>,
    button: Option<(&str, &str)>,
    replied_marketing: bool,
    opt_out: &[S],
    opt_in: &[S],
) -> Option<Intent> {
    if let Some((payload, label)) = button {
        let stop = |s: &str| matches(s, opt_out) || matches(s, META_STOP_BUTTON_LABELS);
        if replied_marketing && (stop(payload) || stop(label)) {
            return Some(Intent::OptOut(Reason::Button));
        }
        if matches(payload, opt_in) || matches(label, opt_in) {
            return Some(Intent::OptIn);
        }
    }
    let text = text?;
    if matches(text, opt_out) {
        Some(Intent::OptOut(Reason::Keyword))
    } else if matches(text, opt_in) {
        Some(Intent::OptIn)
    } else {
        None
    }
}

/// Checks a configured keyword list: 1 to [`MAX_KEYWORDS`] keywords, each a non-empty word or
/// phrase of at most [`MAX_KEYWORD_CHARS`] characters once normalized. Returns the keywords
/// as given (trimmed), without duplicates.
pub fn check_keywords(list: &[String]) -> Result<Vec<String>, String> {
    if list.is_empty() {
        return Err("must hold at least one keyword (use null for the defaults)".into());
    }
    if list.len() > MAX_KEYWORDS {
        return Err(format!("must hold at most {MAX_KEYWORDS} keywords"));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut seen: Vec<String> = Vec::new();
    for (i, k) in list.iter().enumerate() {
        let n = normalize(k);
        if n.is_empty() {
            return Err(format!(
                "keyword {i} ('{k}') has no letter or digit, so no text could match it"
            ));
        }
        if n.chars().count() > MAX_KEYWORD_CHARS {
            return Err(format!(
                "keyword {i} is longer than {MAX_KEYWORD_CHARS} characters"
            ));
        }
        if k.chars().any(char::is_control) {
            return Err(format!("keyword {i} contains a control character"));
        }
        if !seen.contains(&n) {
            seen.push(n);
            out.push(k.trim().to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_their_names_in_json() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn normalize_drops_case_accents_and_surrounding_punctuation() {
        assert_eq!(normalize("  stop! "), "stop");
        assert_eq!(normalize("Bája."), "baja");
        assert_eq!(normalize("¡¡BAJA!!"), "baja");
        assert_eq!(normalize("\"Sair\""), "sair");
        assert_eq!(normalize("SAÍR"), "sair");
        // Decomposed form: a + combining acute.
        assert_eq!(normalize("Ba\u{0301}ja"), "baja");
        assert_eq!(normalize("  please   stop  "), "please stop");
        assert_eq!(normalize("🛑 STOP 🛑"), "stop");
        assert_eq!(normalize("..."), "");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("Ñandú"), "nandu");
    }

    #[test]
    fn defaults_match_exact_keywords_only() {
        for text in [
            "STOP",
            "stop",
            "  stop! ",
            "Stop.",
            "Bája.",
            "baja",
            "PARAR",
            "cancelar",
            "Unsubscribe",
            "sair",
            "SAÍR!",
            "\tstop\n",
        ] {
            assert!(matches(text, DEFAULT_OPT_OUT), "{text:?} should match");
        }
        for text in [
            "please stop",
            "stop please",
            "stopp",
            "sto p",
            "STOP STOP",
            "",
            "   ",
            "!!!",
            "start",
            "bajar",
            "dar de baja",
        ] {
            assert!(!matches(text, DEFAULT_OPT_OUT), "{text:?} should not match");
        }
        assert!(matches("Start", DEFAULT_OPT_IN));
        assert!(matches("¡ALTA!", DEFAULT_OPT_IN));
        assert!(!matches("stop", DEFAULT_OPT_IN));
    }

    #[test]
    fn configured_keywords_are_compared_the_same_way() {
        let custom = vec!["Dar de baja".to_string(), "NO MÁS".to_string()];
        assert!(matches("dar de baja", &custom));
        assert!(matches("  DAR  DE   BAJA!", &custom));
        assert!(matches("no mas.", &custom));
        assert!(!matches("stop", &custom));
        assert!(!matches("dar de baja ya", &custom));
    }

    #[test]
    fn intent_of_texts_and_buttons() {
        let out = DEFAULT_OPT_OUT;
        let inn = DEFAULT_OPT_IN;
        assert_eq!(
            intent(Some(" Stop!"), None, false, out, inn),
            Some(Intent::OptOut(Reason::Keyword))
        );
        assert_eq!(
            intent(Some("alta"), None, false, out, inn),
            Some(Intent::OptIn)
        );
        assert_eq!(intent(Some("hola"), None, false, out, inn), None);
        assert_eq!(intent(None, None, true, out, inn), None);
        // Meta's stop button on a marketing template.
        assert_eq!(
            intent(None, Some(("", "Stop promotions")), true, out, inn),
            Some(Intent::OptOut(Reason::Button))
        );
        assert_eq!(
            intent(None, Some(("STOP", "Unsubscribe me")), true, out, inn),
            Some(Intent::OptOut(Reason::Button))
        );
        // The same button on a utility template is not a marketing opt-out.
        assert_eq!(
            intent(None, Some(("", "Stop promotions")), false, out, inn),
            None
        );
        // Another button of a marketing template.
        assert_eq!(intent(None, Some(("buy", "Buy now")), true, out, inn), None);
        // A button whose label is an opt-in keyword.
        assert_eq!(
            intent(None, Some(("resume", "Start")), true, out, inn),
            Some(Intent::OptIn)
        );
    }

    #[test]
    fn reasons_round_trip_and_only_api_is_manual() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("STOP"), None);
        assert!(Reason::Keyword.is_automatic());
        assert!(Reason::Button.is_automatic());
        assert!(Reason::Meta131050.is_automatic());
        assert!(!Reason::Api.is_automatic());
    }

    #[test]
    fn keyword_lists_are_checked() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_keywords(&list(&[" Basta ", "BASTA", "basta!"])).unwrap(),
            vec!["Basta"]
        );
        assert!(check_keywords(&[]).is_err());
        assert!(check_keywords(&list(&["!!"])).is_err());
        assert!(check_keywords(&list(&[&"x".repeat(41)])).is_err());
        assert!(check_keywords(&list(&["a\u{7}b"])).is_err());
        let many: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
        assert!(check_keywords(&many).is_err());
    }
}

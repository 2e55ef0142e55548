//! Click tracking. Per campaign, [`LinkPlan::mark`] finds every `<a href>` in the body
//! template once and wraps the trackable ones in markers; per recipient,
//! [`LinkPlan::resolve_html`] swaps each marker for a signed `/c/{token}` URL in a
//! single pass, without parsing HTML again.
//!
//! A static target (`href="https://shop.example/sale"`) is resolved, UTM-tagged and
//! hashed once per campaign; a target written with Tera (`href="{{ p.url }}"`) is known
//! only after rendering, so its marker carries the rendered text.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use super::safety::{LINK_END, LINK_START};
use crate::links::{KeyRing, Token, link_id};

/// A tracked target known at campaign level.
#[derive(Debug, Clone)]
struct StaticLink {
    id: i64,
    url: String,
}

/// Dynamic targets resolved so far, by rendered href text: product links repeat across
/// recipients, and resolving one costs a URL parse and a SHA-256.
type TargetCache = RwLock<HashMap<Box<str>, Option<(i64, Arc<str>)>>>;
const CACHE_LIMIT: usize = 8192;

/// What per-recipient link rewriting needs, computed once per campaign.
#[derive(Debug)]
pub(crate) struct LinkPlan {
    base_url: String,
    /// `{base_url}/c/`, HTML-escaped for attribute context.
    click_prefix: String,
    utm: Vec<(String, String)>,
    statics: Vec<StaticLink>,
    cache: TargetCache,
}

/// The (link id, stored target) pairs one message uses, and their tokens.
#[derive(Debug, Default)]
pub(crate) struct UsedLinks {
    pub links: Vec<(i64, String)>,
    tokens: Vec<String>,
}

impl UsedLinks {
    /// The click token for `id`, signed once per message.
    fn token(&mut self, id: i64, url: &str, signer: &Signer) -> &str {
        let index = match self.links.iter().position(|(known, _)| *known == id) {
            Some(index) => index,
            None => {
                self.links.push((id, url.to_string()));
                self.tokens.push(signer.click_token(id));
                self.tokens.len() - 1
            }
        };
        &self.tokens[index]
    }
}

/// Per-recipient signing inputs.
pub(crate) struct Signer<'a> {
    pub keys: &'a KeyRing,
    pub campaign_id: i64,
    pub recipient_id: i64,
}

impl Signer<'_> {
    fn click_token(&self, link: i64) -> String {
        Token::click(self.campaign_id, self.recipient_id, link).sign(self.keys)
    }
}

impl LinkPlan {
    pub fn new(base_url: &str, utm: &std::collections::BTreeMap<String, String>) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        let click_prefix =
            html_escape::encode_double_quoted_attribute(&format!("{base_url}/c/")).into_owned();
        Self {
            base_url,
            click_prefix,
            utm: utm.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            statics: Vec::new(),
            cache: RwLock::default(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Rewrites the body template: trackable hrefs get markers, `data-notrack` attributes
    /// disappear (their links stay as written).
    pub fn mark(&mut self, source: &str) -> String {
        let mut out = String::with_capacity(source.len() + 256);
        let mut copied = 0;
        for tag in anchor_tags(source) {
            let attrs = attributes(source, tag.clone());
            let notrack = attrs.iter().find(|a| a.is(source, "data-notrack"));
            let href = attrs.iter().find(|a| a.is(source, "href"));
            if let Some(attr) = notrack {
                out.push_str(&source[copied..attr.full.start]);
                copied = attr.full.end;
                continue;
            }
            let Some((href, value)) = href.and_then(|a| a.value.clone().map(|v| (a, v))) else {
                continue;
            };
            if let Some(marked) = self.marker(&source[value.clone()]) {
                out.push_str(&source[copied..href.full.start]);
                out.push_str(" href=\"");
                out.push_str(&marked);
                out.push('"');
                copied = href.full.end;
            }
        }
        out.push_str(&source[copied..]);
        out
    }

    /// The marker replacing an href value, or None to leave it alone.
    fn marker(&mut self, value: &str) -> Option<String> {
        let value = value.trim();
        if value.contains("{{") || value.contains("{%") {
            return (!is_own_url_variable(value)).then(|| format!("{LINK_START}{value}{LINK_END}"));
        }
        let url = html_escape::decode_html_entities(value);
        if !self.is_trackable(&url) {
            return None;
        }
        let url = self.with_utm(&url);
        let id = link_id(&url);
        let index = match self.statics.iter().position(|s| s.id == id) {
            Some(index) => index,
            None => {
                self.statics.push(StaticLink { id, url });
                self.statics.len() - 1
            }
        };
        Some(format!("{LINK_START}#{index}{LINK_END}"))
    }

    fn is_trackable(&self, url: &str) -> bool {
        let base = &self.base_url;
        let own = url.strip_prefix(base.as_str());
        is_http(url) && !matches!(own, Some(rest) if rest.is_empty() || rest.starts_with('/'))
    }

    /// Appends the campaign's UTM parameters unless the URL already sets them.
    fn with_utm(&self, url: &str) -> String {
        crate::links::with_utm(url, self.utm.iter().map(|(k, v)| (k, v)))
    }

    /// A dynamic target: the rendered (HTML-escaped) href text → id and stored target.
    fn dynamic(&self, rendered: &str) -> Option<(i64, Arc<str>)> {
        if let Some(known) = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(rendered).cloned())
        {
            return known;
        }
        let resolved = self.resolve_dynamic(rendered);
        if let Ok(mut cache) = self.cache.write()
            && cache.len() < CACHE_LIMIT
        {
            cache.insert(rendered.into(), resolved.clone());
        }
        resolved
    }

    fn resolve_dynamic(&self, rendered: &str) -> Option<(i64, Arc<str>)> {
        let url = html_escape::decode_html_entities(rendered.trim());
        if !self.is_trackable(&url) {
            return None;
        }
        let url = self.with_utm(&url);
        Some((link_id(&url), url.into()))
    }

    /// Replaces every marker in rendered HTML by its signed click URL.
    pub fn resolve_html(&self, html: &str, signer: &Signer, used: &mut UsedLinks) -> String {
        let mut out = String::with_capacity(html.len() + 64 * self.statics.len().max(4));
        let mut rest = html;
        while let Some(start) = rest.find(LINK_START) {
            out.push_str(&rest[..start]);
            let body = &rest[start + 1..];
            let Some(end) = body.find(LINK_END) else {
                rest = body;
                continue;
            };
            self.write_target(&body[..end], signer, used, &mut out);
            rest = &body[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn write_target(&self, marked: &str, signer: &Signer, used: &mut UsedLinks, out: &mut String) {
        let known = marked
            .strip_prefix('#')
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| self.statics.get(i));
        let token = match known {
            Some(link) => Some(used.token(link.id, &link.url, signer)),
            None => self
                .dynamic(marked)
                .map(|(id, url)| used.token(id, &url, signer)),
        };
        match token {
            Some(token) => {
                out.push_str(&self.click_prefix);
                out.push_str(token);
            }
            None => out.push_str(marked),
        }
    }

    /// Tracks the bare http(s) URLs of a plain-text part.
    pub fn resolve_text(&self, text: &str, signer: &Signer, used: &mut UsedLinks) -> String {
        let mut out = String::with_capacity(text.len() + 128);
        let mut rest = text;
        while let Some(start) = find_url_start(rest) {
            out.push_str(&rest[..start]);
            let len = url_len(&rest[start..]);
            let url = &rest[start..start + len];
            match self.dynamic(url) {
                Some((id, target)) => {
                    out.push_str(&self.base_url);
                    out.push_str("/c/");
                    out.push_str(used.token(id, &target, signer));
                }
                None => out.push_str(url),
            }
            rest = &rest[start + len..];
        }
        out.push_str(rest);
        out
    }
}

fn is_http(url: &str) -> bool {
    let head = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    head.starts_with("http://") || head.starts_with("https://")
}

/// `{{ unsubscribe_url }}` and friends already point at our own signed URLs.
fn is_own_url_variable(value: &str) -> bool {
    let inner = value
        .strip_prefix("{{")
        .and_then(|v| v.strip_suffix("}}"))
        .map(|v| v.trim_matches(|c: char| c.is_whitespace() || c == '-'));
    matches!(
        inner,
        Some("unsubscribe_url" | "preferences_url" | "view_online_url")
    )
}

/// Where the next `http://` or `https://` starts: one pass, whatever the text's length.
fn find_url_start(text: &str) -> Option<usize> {
    memchr::memmem::find_iter(text.as_bytes(), b"http").find(|&i| {
        let rest = &text.as_bytes()[i + 4..];
        rest.starts_with(b"://") || rest.starts_with(b"s://")
    })
}

fn url_len(text: &str) -> usize {
    let end = text
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
        .unwrap_or(text.len());
    text[..end]
        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']'])
        .len()
}

/// Byte ranges of the attribute section of every `<a …>` start tag.
fn anchor_tags(source: &str) -> Vec<Range<usize>> {
    let bytes = source.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(found) = memchr::memchr(b'<', &bytes[i..]) {
        let start = i + found;
        let is_anchor = matches!(bytes.get(start + 1), Some(b'a' | b'A'))
            && bytes.get(start + 2).is_some_and(u8::is_ascii_whitespace);
        i = start + 1;
        if is_anchor {
            let end = tag_end(source, start + 2);
            tags.push(start + 2..end);
            i = end;
        }
    }
    tags
}

/// The index of the `>` closing a start tag (or the end of input), skipping quoted
/// values and Tera constructs, which may contain `>`.
fn tag_end(source: &str, mut i: usize) -> usize {
    let bytes = source.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'>' => return i,
            b'"' | b'\'' => i = closing_quote(source, i),
            b'{' => i = skip_tera(source, i).unwrap_or(i + 1),
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Index just past the quote closing the one at `open`.
fn closing_quote(source: &str, open: usize) -> usize {
    let bytes = source.as_bytes();
    let quote = bytes[open];
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            return i + 1;
        }
        i = skip_tera(source, i).unwrap_or(i + 1);
    }
    bytes.len()
}

/// When a Tera construct starts at `i`, the index just past its end.
pub(crate) fn skip_tera(source: &str, i: usize) -> Option<usize> {
    let closer = match source.get(i..i + 2)? {
        "{{" => "}}",
        "{%" => "%}",
        "{#" => "#}",
        _ => return None,
    };
    let end = source[i + 2..].find(closer)?;
    Some(i + 2 + end + 2)
}

#[derive(Debug)]
struct Attribute {
    name: Range<usize>,
    /// The value without its quotes.
    value: Option<Range<usize>>,
    /// From the whitespace before the name to the end of the value.
    full: Range<usize>,
}

impl Attribute {
    fn is(&self, source: &str, name: &str) -> bool {
        source[self.name.clone()].eq_ignore_ascii_case(name)
    }
}

fn attributes(source: &str, tag: Range<usize>) -> Vec<Attribute> {
    let bytes = source.as_bytes();
    let mut attrs = Vec::new();
    let mut i = tag.start;
    while i < tag.end {
        let lead = i;
        while i < tag.end && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= tag.end || bytes[i] == b'/' {
            break;
        }
        if let Some(end) = skip_tera(source, i) {
            i = end;
            continue;
        }
        let name_start = i;
        while i < tag.end && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'=' | b'/') {
            i += 1;
        }
        let name = name_start..i;
        let (value, end) = attribute_value(source, i, tag.end);
        attrs.push(Attribute {
            name,
            value,
            full: lead..end,
        });
        i = end.max(name_start + 1);
    }
    attrs
}

/// Parses `= value` after an attribute name ending at `i`.
fn attribute_value(source: &str, i: usize, end: usize) -> (Option<Range<usize>>, usize) {
    let bytes = source.as_bytes();
    let mut j = i;
    while j < end && bytes[j].is_ascii_whitespace() {
        j += 1;
    }
    if j >= end || bytes[j] != b'=' {
        return (None, i);
    }
    j += 1;
    while j < end && bytes[j].is_ascii_whitespace() {
        j += 1;
    }
    if j < end && matches!(bytes[j], b'"' | b'\'') {
        let close = closing_quote(source, j).min(end);
        let inner_end = close.saturating_sub(1).max(j + 1);
        return (Some(j + 1..inner_end), close);
    }
    let start = j;
    while j < end && !bytes[j].is_ascii_whitespace() {
        j = skip_tera(source, j).unwrap_or(j + 1);
    }
    (Some(start..j.min(end)), j.min(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan(utm: &[(&str, &str)]) -> LinkPlan {
        let utm: BTreeMap<String, String> = utm
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LinkPlan::new("https://t.example/", &utm)
    }

    fn resolve(plan: &LinkPlan, html: &str) -> (String, Vec<(i64, String)>) {
        let keys = KeyRing::development();
        let signer = Signer {
            keys: &keys,
            campaign_id: 1,
            recipient_id: 2,
        };
        let mut used = UsedLinks::default();
        let out = plan.resolve_html(html, &signer, &mut used);
        (out, used.links)
    }

    #[test]
    fn static_links_are_tracked_with_utm() {
        let mut plan = plan(&[("utm_source", "mailcast")]);
        let marked = plan
            .mark(r#"<p><a class="b" href="https://shop.example/sale?a=1&amp;b=2">Sale</a></p>"#);
        let (html, links) = resolve(&plan, &marked);
        assert!(
            html.starts_with(r#"<p><a class="b" href="https://t.example/c/"#),
            "{html}"
        );
        assert_eq!(links.len(), 1);
        assert_eq!(
            links[0].1,
            "https://shop.example/sale?a=1&b=2&utm_source=mailcast"
        );
        assert_eq!(links[0].0, link_id(&links[0].1));
    }

    #[test]
    fn existing_utm_parameters_win() {
        let mut plan = plan(&[("utm_source", "mailcast")]);
        let marked = plan.mark(r#"<a href="https://x.example/?utm_source=crm">x</a>"#);
        let (_, links) = resolve(&plan, &marked);
        assert_eq!(links[0].1, "https://x.example/?utm_source=crm");
    }

    #[test]
    fn notrack_mailto_and_own_links_are_left_alone() {
        let mut plan = plan(&[]);
        let source = concat!(
            r#"<a data-notrack href="https://docs.example/">d</a>"#,
            r#"<a href="mailto:help@example.com">m</a>"#,
            r#"<a href="{{ unsubscribe_url }}">u</a>"#,
            r##"<a href="#top">t</a>"##
        );
        let marked = plan.mark(source);
        assert!(!marked.contains("data-notrack"));
        let (html, links) = resolve(&plan, &marked);
        assert!(links.is_empty());
        assert!(
            html.contains(r#"<a href="https://docs.example/">d</a>"#),
            "{html}"
        );
        assert!(html.contains("mailto:help@example.com"));
        assert!(html.contains("{{ unsubscribe_url }}"));
    }

    #[test]
    fn dynamic_links_are_tracked_after_rendering() {
        let mut plan = plan(&[]);
        let marked =
            plan.mark(r#"<a href="{{ p.url | default(value="https://x") }}" title='>'>x</a>"#);
        assert!(marked.contains(LINK_START));
        let rendered = marked.replace(
            r#"{{ p.url | default(value="https://x") }}"#,
            "https:&#x2F;&#x2F;shop.example&#x2F;p?id=1&amp;v=2",
        );
        let (html, links) = resolve(&plan, &rendered);
        assert_eq!(links[0].1, "https://shop.example/p?id=1&v=2");
        assert!(html.contains("https://t.example/c/"));
    }

    #[test]
    fn dynamic_links_to_our_own_host_stay_unsigned_by_click() {
        let mut plan = plan(&[]);
        let marked = plan.mark(r#"<a href="{{ url }}">x</a>"#);
        let rendered = marked.replace("{{ url }}", "https://t.example/u/abc");
        let (html, links) = resolve(&plan, &rendered);
        assert!(links.is_empty());
        assert_eq!(html, r#"<a href="https://t.example/u/abc">x</a>"#);
    }

    #[test]
    fn unquoted_and_uppercase_hrefs_are_found() {
        let mut plan = plan(&[]);
        let marked =
            plan.mark("<A HREF=https://a.example/x>a</A><a\nhref = 'http://b.example'>b</a>");
        let (html, links) = resolve(&plan, &marked);
        assert_eq!(links.len(), 2);
        assert!(
            !html.contains("a.example") && !html.contains("b.example"),
            "{html}"
        );
    }

    #[test]
    fn text_urls_are_tracked_without_trailing_punctuation() {
        let plan = plan(&[]);
        let keys = KeyRing::development();
        let signer = Signer {
            keys: &keys,
            campaign_id: 1,
            recipient_id: 2,
        };
        let mut used = UsedLinks::default();
        let text = "See https://shop.example/sale. Or (https://t.example/u/x).";
        let out = plan.resolve_text(text, &signer, &mut used);
        assert_eq!(used.links[0].1, "https://shop.example/sale");
        assert!(out.starts_with("See https://t.example/c/"));
        assert!(out.ends_with(". Or (https://t.example/u/x)."), "{out}");
    }
}

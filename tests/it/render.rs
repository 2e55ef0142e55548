//! Rendering: the shipped templates produce correct, tracked, safe messages for every
//! fixture recipient, as an independent MIME parser sees them.

use std::collections::BTreeMap;
use std::path::Path;

use mail_parser::{MessageParser, MimeHeaders};
use mailcast::links::{HONEYPOT_LINK_ID, KeyRing, Token, TokenKind, honeypot_token, link_id};
use mailcast::render::{
    Because, CampaignRenderer, DkimAlgorithm, DkimSettings, LinkSettings, Part, RecipientContext,
    Recommendation, RenderError, RenderSpec, RenderedMessage, is_crlf_only, load_all,
    write_preview,
};
use mailcast::store::{CampaignSettings, NewTemplate, Product, Recipient, Template};
use serde_json::{Value, json};
use sqlx::types::Json;

const BASE: &str = "https://t.example.com";

fn keyring() -> KeyRing {
    KeyRing::parse("3:000102030405060708090a0b0c0d0e0f,1:0f0e0d0c0b0a09080706050403020100")
        .expect("valid ring")
}

fn template(new: NewTemplate) -> Template {
    Template {
        id: 1,
        name: new.name,
        subject: new.subject,
        preheader: new.preheader,
        html: new.html,
        text: new.text,
    }
}

fn spec(template: Template) -> RenderSpec {
    let utm: BTreeMap<String, String> = [("utm_source", "mailcast"), ("utm_medium", "email")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    RenderSpec {
        campaign_id: 42,
        campaign_name: "Weekly newsletter".to_string(),
        marketing: true,
        template,
        from_name: "Northwind Shop".to_string(),
        from_email: "news@shop.example.com".to_string(),
        reply_to: Some("help@shop.example.com".to_string()),
        settings: CampaignSettings {
            utm,
            declared_segments: vec!["vip".to_string()],
            ..CampaignSettings::default()
        },
        links: LinkSettings {
            base_url: BASE.to_string(),
            keyring: keyring(),
            list_id_domain: "lists.shop.example.com".to_string(),
        },
    }
}

fn inline_template(subject: &str, html: &str, text: Option<&str>) -> Template {
    template(NewTemplate {
        name: "inline".to_string(),
        subject: subject.to_string(),
        preheader: None,
        html: html.to_string(),
        text: text.map(str::to_string),
    })
}

fn recipient(id: i64, first_name: Option<&str>, attributes: Value) -> Recipient {
    Recipient {
        id,
        email: format!("person{id}@example.org"),
        first_name: first_name.map(str::to_string),
        last_name: Some("Müller".to_string()),
        country: Some("DE".to_string()),
        city: Some("Köln".to_string()),
        attributes: Json(attributes),
        locale: Some("de-DE".to_string()),
        timezone: Some("Europe/Berlin".to_string()),
        status: "active".to_string(),
        created_at: 1_700_000_000,
    }
}

fn product(id: i64, name: &str) -> Product {
    Product {
        id,
        sku: format!("SKU-{id}"),
        name: name.to_string(),
        url: format!("https://shop.example.com/p/SKU-{id}"),
        image_url: Some(format!("https://cdn.shop.example.com/SKU-{id}.jpg")),
        price_cents: 1999 + id * 100,
        currency: "EUR".to_string(),
        category: "shoes".to_string(),
        in_stock: id % 5 != 0,
    }
}

fn context(recipient: Recipient, products: &[Product]) -> RecipientContext {
    let pick = |k: usize| products[(recipient.id as usize + k) % products.len()].clone();
    let (recommended, in_cart) = match products.len() {
        0 => (0, 0),
        _ => (4, recipient.id as usize % 3 + 1),
    };
    RecipientContext {
        segments: if recipient.id % 3 == 0 {
            vec!["vip".to_string()]
        } else {
            vec![]
        },
        recommendations: (0..recommended)
            .map(|k| Recommendation {
                product: pick(k),
                reason: "bought together with your last purchase".to_string(),
                because: Because::Trending,
            })
            .collect(),
        cart: (0..in_cart).map(|k| pick(k + 7)).collect(),
        trigger: None,
        recipient,
    }
}

/// The fixture recipients and products when the generator has written them, otherwise a
/// varied in-memory set.
fn population() -> (Vec<Recipient>, Vec<Product>) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let recipients = fixture_recipients(&fixtures.join("recipients.csv"));
    let products = fixture_products(&fixtures.join("products.csv"));
    if recipients.len() >= 100 && products.len() >= 10 {
        return (recipients, products);
    }
    let names = [
        Some("Ann"),
        None,
        Some(""),
        Some("José"),
        Some("Zoë"),
        Some("李"),
    ];
    let recipients = (1..=300)
        .map(|id| {
            let tier = ["gold", "silver"][id as usize % 2];
            let attributes = json!({"loyalty_tier": tier,
                                    "interests": ["running"], "birthday": "08-25"});
            recipient(id, names[id as usize % names.len()], attributes)
        })
        .collect();
    let products = (1..=20)
        .map(|i| product(i, &format!("Product {i}")))
        .collect();
    (recipients, products)
}

fn fixture_recipients(path: &Path) -> Vec<Recipient> {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    let rows = reader.deserialize::<BTreeMap<String, String>>();
    rows.flatten()
        .enumerate()
        .map(|(i, row)| {
            let get = |k: &str| row.get(k).cloned().filter(|v| !v.is_empty());
            let attributes = get("attributes")
                .and_then(|a| serde_json::from_str(&a).ok())
                .unwrap_or_else(|| json!({}));
            let mut r = recipient(i as i64 + 1, None, attributes);
            r.email = get("email").unwrap_or_default();
            r.first_name = get("first_name");
            r.last_name = get("last_name");
            r.country = get("country");
            r.city = get("city");
            r.locale = get("locale");
            r.timezone = get("timezone");
            r
        })
        .collect()
}

fn fixture_products(path: &Path) -> Vec<Product> {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    let rows = reader.deserialize::<BTreeMap<String, String>>();
    rows.flatten()
        .enumerate()
        .map(|(i, row)| {
            let get = |k: &str| row.get(k).cloned().unwrap_or_default();
            let price: f64 = get("price").parse().unwrap_or(0.0);
            Product {
                id: i as i64 + 1,
                sku: get("sku"),
                name: get("name"),
                url: get("url"),
                image_url: Some(get("image_url")).filter(|u| !u.is_empty()),
                price_cents: (price * 100.0).round() as i64,
                currency: get("currency"),
                category: get("category"),
                in_stock: get("in_stock") != "false",
            }
        })
        .collect()
}

fn example_templates() -> Vec<NewTemplate> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let templates = load_all(&root).expect("templates load");
    let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
    for expected in [
        "weekly-picks",
        "abandoned-cart",
        "win-back",
        "welcome",
        "birthday-offer",
        "welcome-tips",
        "welcome-picks",
    ] {
        assert!(
            names.contains(&expected),
            "templates/{expected} missing: {names:?}"
        );
    }
    templates
}

fn hrefs(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("href=\"") {
        rest = &rest[i + 6..];
        let end = rest.find('"').unwrap_or(rest.len());
        found.push(html_escape::decode_html_entities(&rest[..end]).into_owned());
    }
    found
}

/// What an independent parser sees in one rendered message.
fn check_message(message: &RenderedMessage, recipient: &Recipient) {
    assert!(
        is_crlf_only(&message.raw),
        "raw message has bare line feeds"
    );
    let parsed = MessageParser::default()
        .parse(&message.raw)
        .expect("mail-parser parses the message");
    let content_type = parsed.content_type().expect("Content-Type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!(
        parsed.message_id(),
        Some(message.message_id.trim_matches(['<', '>']))
    );
    let header = |name: &str| {
        parsed
            .header_raw(name)
            .unwrap_or_else(|| panic!("{name} header missing"))
            .trim()
            .to_string()
    };
    let unsubscribe = header("List-Unsubscribe");
    assert!(
        unsubscribe.contains(&format!("<{BASE}/u/")),
        "{unsubscribe}"
    );
    assert!(
        unsubscribe.contains("<mailto:unsubscribe@lists.shop.example.com?"),
        "{unsubscribe}"
    );
    assert_eq!(
        header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert!(header("List-Id").contains("<campaign-42.lists.shop.example.com>"));
    let to = parsed
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    assert_eq!(
        to.map(str::to_lowercase),
        Some(recipient.email.trim().to_lowercase())
    );

    let html = parsed.body_html(0).expect("an HTML part");
    let text = parsed.body_text(0).expect("a text part");
    assert!(!text.trim().is_empty());
    for href in hrefs(&html) {
        if href.starts_with("http://") || href.starts_with("https://") {
            assert!(href.starts_with(BASE), "unsigned link {href}");
            check_signed(&href, message, recipient.id);
        }
    }
    assert!(html.contains(&format!("{BASE}/o/")), "no open pixel");
    let honeypot = honeypot_token(42, recipient.id).url(BASE, &keyring());
    let hidden = format!(
        r#"<a href="{honeypot}" style="display:none" aria-hidden="true" tabindex="-1"></a>"#
    );
    assert_eq!(html.matches(&hidden).count(), 1, "one hidden honeypot link");
    assert!(
        !text.contains(&honeypot),
        "the text part shows no honeypot: {text}"
    );
}

fn check_signed(url: &str, message: &RenderedMessage, recipient_id: i64) {
    let path = &url[BASE.len() + 1..];
    let (kind, token) = path.split_once('/').expect("kind/token");
    let token = Token::verify(&keyring(), token).expect("token verifies");
    assert_eq!((token.campaign_id, token.recipient_id), (42, recipient_id));
    match (kind, token.kind) {
        ("c", TokenKind::Click) if token.link_id == HONEYPOT_LINK_ID => {}
        ("c", TokenKind::Click) => {
            let stored = message.links.iter().find(|(id, _)| *id == token.link_id);
            let (id, target) = stored.expect("click target is in message.links");
            assert_eq!(*id, link_id(target));
        }
        ("u", TokenKind::Unsubscribe) | ("v", TokenKind::View) | ("o", TokenKind::Open) => {}
        other => panic!("unexpected tracked URL {other:?}"),
    }
}

#[test]
fn every_example_template_renders_for_every_fixture_recipient() {
    let (recipients, products) = population();
    for new in example_templates() {
        let name = new.name.clone();
        let renderer = CampaignRenderer::new(spec(template(new)))
            .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
        for recipient in &recipients {
            let ctx = context(recipient.clone(), &products);
            let message = renderer
                .render(&ctx)
                .unwrap_or_else(|e| panic!("{name} for {}: {e}", recipient.email));
            check_message(&message, recipient);
        }
    }
}

#[test]
fn recommendations_and_cart_items_reach_the_message() {
    let products: Vec<Product> = (1..=12).map(|i| product(i, &format!("Shoe {i}"))).collect();
    let ctx = context(recipient(7, Some("Ann"), json!({})), &products);
    for new in example_templates() {
        let name = new.name.clone();
        let renderer = CampaignRenderer::new(spec(template(new))).expect("compiles");
        let message = renderer.render(&ctx).expect("renders");
        match name.as_str() {
            "weekly-picks" => {
                for r in &ctx.recommendations {
                    assert!(
                        message.html.contains(&r.product.name),
                        "{name}: {}",
                        r.product.name
                    );
                }
                assert!(
                    message
                        .html
                        .contains("bought together with your last purchase")
                );
            }
            "abandoned-cart" => {
                for item in &ctx.cart {
                    assert!(message.html.contains(&item.name), "{name}: {}", item.name);
                }
            }
            _ => {}
        }
        assert!(
            message.html.contains("Ann"),
            "{name} does not greet by name"
        );
    }
}

#[test]
fn utm_parameters_are_added_to_stored_targets() {
    let html =
        r#"<a href="https://shop.example.com/sale">Sale</a> <a href="{{ unsubscribe_url }}">u</a>"#;
    let renderer =
        CampaignRenderer::new(spec(inline_template("Hi", html, None))).expect("compiles");
    let message = renderer
        .render(&context(recipient(1, None, json!({})), &[]))
        .expect("renders");
    let targets: Vec<&str> = message.links.iter().map(|(_, url)| url.as_str()).collect();
    assert_eq!(
        targets,
        ["https://shop.example.com/sale?utm_medium=email&utm_source=mailcast"]
    );
}

#[test]
fn data_notrack_links_stay_direct_and_lose_the_attribute() {
    let html = r#"<a data-notrack href="https://docs.example.com/terms">Terms</a> <a href="{{ unsubscribe_url }}">u</a>"#;
    let renderer =
        CampaignRenderer::new(spec(inline_template("Hi", html, None))).expect("compiles");
    let message = renderer
        .render(&context(recipient(1, None, json!({})), &[]))
        .expect("renders");
    assert!(
        message
            .html
            .contains(r#"<a href="https://docs.example.com/terms">Terms</a>"#)
    );
    assert!(!message.html.contains("data-notrack"));
    assert!(message.links.is_empty());
}

#[test]
fn hostile_attribute_values_render_as_text() {
    let html = r#"<p title="{{ recipient.first_name }}">Hi {{ recipient.first_name }}, {{ recipient.attributes.note }}</p><p title='{{ recipient.attributes.note }}'></p><a href="{{ unsubscribe_url }}">u</a>"#;
    let renderer =
        CampaignRenderer::new(spec(inline_template("Hello", html, None))).expect("compiles");
    let hostile = r#"<a href=x>"'"#;
    let r = recipient(
        9,
        Some(hostile),
        json!({"note": "{{ 7*7 }}{% if true %}x{% endif %}"}),
    );
    let message = renderer.render(&context(r, &[])).expect("renders");
    assert!(!message.html.contains("<a href=x>"), "{}", message.html);
    assert!(
        message.html.contains("&lt;a href=x&gt;&quot;&#39;"),
        "{}",
        message.html
    );
    assert!(message.html.contains("{{ 7*7 }}{% if true %}x{% endif %}"));
    assert!(!message.html.contains("49"));
    let parsed = MessageParser::default()
        .parse(&message.raw)
        .expect("parses");
    assert!(
        parsed
            .body_text(0)
            .expect("text")
            .contains(r#"<a href=x>"'"#)
    );
}

#[test]
fn line_breaks_in_a_rendered_subject_refuse_that_delivery() {
    let renderer = CampaignRenderer::new(spec(inline_template(
        "Hi {{ recipient.first_name }}",
        r#"<a href="{{ unsubscribe_url }}">u</a>"#,
        None,
    )))
    .expect("compiles");
    for name in ["Ann\r\nBcc: victim@example.net", "Ann\nX-Evil: 1", "Ann\rX"] {
        let error = renderer
            .render(&context(recipient(1, Some(name), json!({})), &[]))
            .expect_err("refused");
        assert!(
            matches!(
                error,
                RenderError::HeaderInjection {
                    field: "Subject",
                    ..
                }
            ),
            "{error}"
        );
        assert!(!error.is_campaign_error());
        assert!(error.to_string().contains("line break"), "{error}");
    }
    let fine = renderer.render(&context(recipient(2, Some("Ann"), json!({})), &[]));
    assert_eq!(fine.expect("renders").subject, "Hi Ann");
}

#[test]
fn a_sender_name_with_a_line_break_is_refused() {
    let mut spec = spec(inline_template(
        "Hi",
        r#"<a href="{{ unsubscribe_url }}">u</a>"#,
        None,
    ));
    spec.from_name = "Shop\r\nBcc: x@example.net".to_string();
    let error = CampaignRenderer::new(spec).err().expect("refused");
    assert!(
        matches!(
            error,
            RenderError::HeaderInjection {
                field: "From name",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_lone_dot_line_cannot_end_the_message_early() {
    let text = "First line\n.\nStill the same message\r\n.\rand this\n";
    let html = "<p>a</p>\n.\n<p>b</p><a href=\"{{ unsubscribe_url }}\">u</a>";
    let template = inline_template(
        "Dots",
        html,
        Some(&format!("{text}{{{{ unsubscribe_url }}}}")),
    );
    let renderer = CampaignRenderer::new(spec(template)).expect("compiles");
    let message = renderer
        .render(&context(recipient(1, None, json!({})), &[]))
        .expect("renders");
    assert!(is_crlf_only(&message.raw));
    let raw = String::from_utf8_lossy(&message.raw);
    assert!(
        !raw.split("\r\n").any(|line| line == "."),
        "a lone dot line in {raw}"
    );
    let parsed = MessageParser::default()
        .parse(&message.raw)
        .expect("parses");
    let text = parsed.body_text(0).expect("text").replace("\r\n", "\n");
    assert!(
        text.contains("First line\n.\nStill the same message\n.\nand this"),
        "{text}"
    );
    let html = parsed.body_html(0).expect("html").replace("\r\n", "\n");
    assert!(html.contains("<p>a</p>\n.\n<p>b</p>"), "{html}");
}

#[test]
fn a_marketing_template_without_unsubscribe_link_is_refused() {
    let html = "<p>Buy now</p><p>To stop these emails, write to us.</p>";
    let error = CampaignRenderer::new(spec(inline_template("Hi", html, None)))
        .err()
        .expect("refused");
    assert!(
        matches!(error, RenderError::MissingUnsubscribe { part: Part::Html }),
        "{error}"
    );
    assert!(error.to_string().contains("unsubscribe_url"));

    let with_html_link = r#"<a href="{{ unsubscribe_url }}">Unsubscribe</a>"#;
    let error = CampaignRenderer::new(spec(inline_template("Hi", with_html_link, Some("no link"))))
        .err()
        .expect("text part refused too");
    assert!(matches!(
        error,
        RenderError::MissingUnsubscribe { part: Part::Text }
    ));

    let mut transactional = spec(inline_template("Receipt", html, None));
    transactional.marketing = false;
    let renderer = CampaignRenderer::new(transactional).expect("transactional needs no link");
    let message = renderer
        .render(&context(recipient(1, None, json!({})), &[]))
        .expect("renders");
    let parsed = MessageParser::default()
        .parse(&message.raw)
        .expect("parses");
    assert!(parsed.header_raw("List-Unsubscribe").is_none());
}

#[test]
fn template_errors_name_line_column_and_expression() {
    let html = "<p>Hi</p>\n<p>{{ recipient.attributes.tier | upper }}</p>\n<a href=\"{{ unsubscribe_url }}\">u</a>";
    let renderer =
        CampaignRenderer::new(spec(inline_template("Hi", html, None))).expect("compiles");
    let error = renderer
        .render(&context(recipient(1, None, json!({"tier": 3})), &[]))
        .expect_err("upper of a number fails");
    let RenderError::Render { part, location, .. } = &error else {
        panic!("unexpected {error:?}");
    };
    assert_eq!(*part, Part::Html);
    let location = location.as_ref().expect("location");
    assert_eq!(location.line, 2, "{error}");
    assert_eq!(
        location.snippet, "recipient.attributes.tier | upper",
        "{error}"
    );

    let broken = "<p>fine</p>\n<p>{% if recipient.first_name %}oops</p>";
    let error = CampaignRenderer::new(spec(inline_template("Hi", broken, None)))
        .err()
        .expect("syntax error");
    let RenderError::Syntax {
        location: Some(location),
        ..
    } = &error
    else {
        panic!("unexpected {error:?}");
    };
    assert!(location.line >= 2, "{error}");
}

#[test]
fn missing_names_fall_back_to_defaults() {
    let renderer = CampaignRenderer::new(spec(inline_template(
        r#"Hi {{ recipient.first_name | default(value="there") }}"#,
        r#"<a href="{{ unsubscribe_url }}">u</a>"#,
        None,
    )))
    .expect("compiles");
    for first_name in [None, Some(""), Some("   ")] {
        let message = renderer
            .render(&context(recipient(1, first_name, json!({})), &[]))
            .expect("renders");
        assert_eq!(message.subject, "Hi there");
    }
}

#[test]
fn message_id_is_stable_across_retries() {
    let renderer = CampaignRenderer::new(spec(inline_template(
        "Hi",
        r#"<a href="{{ unsubscribe_url }}">u</a>"#,
        None,
    )))
    .expect("compiles");
    let ctx = context(recipient(77, None, json!({})), &[]);
    let first = renderer.render(&ctx).expect("renders");
    let again = renderer.render(&ctx).expect("renders");
    assert_eq!(first.message_id, again.message_id);
    assert_eq!(first.message_id, renderer.message_id(77));
    assert_eq!(first.message_id, "<42.77.mailcast@lists.shop.example.com>");
}

#[test]
fn dkim_signature_covers_the_unsubscribe_headers() {
    let dkim = DkimSettings {
        domain: "shop.example.com".to_string(),
        selector: "mc1".to_string(),
        algorithm: DkimAlgorithm::Ed25519,
        private_key: "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=".to_string(),
    };
    let renderer = CampaignRenderer::new(spec(inline_template(
        "Hi",
        r#"<a href="{{ unsubscribe_url }}">u</a>"#,
        None,
    )))
    .expect("compiles")
    .with_dkim(&dkim)
    .expect("valid key");
    let message = renderer
        .render(&context(recipient(1, None, json!({})), &[]))
        .expect("renders");
    let parsed = MessageParser::default()
        .parse(&message.raw)
        .expect("parses");
    let signature = parsed.header_raw("DKIM-Signature").expect("signed");
    let signed: String = signature.split_whitespace().collect();
    for header in [
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
        "message-id",
        "from",
        "subject",
    ] {
        assert!(
            signed.to_lowercase().contains(header),
            "{header} not in {signature}"
        );
    }
    assert!(signed.contains("d=shop.example.com") && signed.contains("s=mc1"));
}

#[test]
fn a_bad_dkim_key_is_refused() {
    let dkim = DkimSettings {
        domain: "shop.example.com".to_string(),
        selector: "mc1".to_string(),
        algorithm: DkimAlgorithm::Rsa,
        private_key: "not a key".to_string(),
    };
    let renderer = CampaignRenderer::new(spec(inline_template(
        "Hi",
        r#"<a href="{{ unsubscribe_url }}">u</a>"#,
        None,
    )))
    .expect("compiles");
    assert!(matches!(
        renderer.with_dkim(&dkim),
        Err(RenderError::Dkim(_))
    ));
}

#[test]
fn preview_writes_eml_html_and_text() {
    let renderer = CampaignRenderer::new(spec(inline_template(
        "Hi",
        r#"<a href="{{ unsubscribe_url }}">u</a>"#,
        None,
    )))
    .expect("compiles");
    let message = renderer
        .render(&context(recipient(5, None, json!({})), &[]))
        .expect("renders");
    let dir = tempfile::tempdir().expect("temp dir");
    let files = write_preview(&message, dir.path()).expect("written");
    assert_eq!(std::fs::read(&files.eml).expect("eml"), message.raw);
    assert!(files.html.ends_with("42.5.html"));
    assert!(
        std::fs::read_to_string(&files.text)
            .expect("txt")
            .contains("/u/")
    );
}

#[test]
fn an_invalid_recipient_address_fails_only_that_delivery() {
    let renderer = CampaignRenderer::new(spec(inline_template(
        "Hi",
        r#"<a href="{{ unsubscribe_url }}">u</a>"#,
        None,
    )))
    .expect("compiles");
    let mut r = recipient(1, None, json!({}));
    r.email = "not an address\r\nBcc: x@example.net".to_string();
    let error = renderer.render(&context(r, &[])).expect_err("refused");
    assert!(
        matches!(error, RenderError::InvalidAddress { field: "To", .. }),
        "{error}"
    );
    assert!(!error.is_campaign_error());
}

#[test]
fn a_sample_check_reports_every_failing_recipient() {
    let html =
        r#"<p>{{ recipient.attributes.tier | upper }}</p><a href="{{ unsubscribe_url }}">u</a>"#;
    let renderer =
        CampaignRenderer::new(spec(inline_template("Hi", html, None))).expect("compiles");
    let samples = [
        context(recipient(1, None, json!({"tier": "gold"})), &[]),
        context(recipient(2, None, json!({})), &[]),
        context(recipient(3, Some("A\nB"), json!({"tier": "x"})), &[]),
    ];
    let mut subject = spec(inline_template("Hi {{ recipient.first_name }}", html, None));
    subject.campaign_id = 43;
    let renderer_with_name = CampaignRenderer::new(subject).expect("compiles");
    let ids =
        |errors: Vec<(i64, RenderError)>| errors.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(ids(renderer.sample_errors(&samples)), [2]);
    assert_eq!(ids(renderer_with_name.sample_errors(&samples)), [2, 3]);
}

mod limits {
    use std::time::Duration;

    use mailcast::render::{CampaignRenderer, Limit, RecipientContext, RenderError, RenderLimits};

    use super::{context, inline_template, recipient, spec};

    fn someone() -> RecipientContext {
        context(recipient(1, Some("Ann"), serde_json::json!({})), &[])
    }

    fn limited(html: &str, limits: RenderLimits) -> CampaignRenderer {
        let template = inline_template("Hi", html, None);
        CampaignRenderer::new(spec(template))
            .expect("compiles")
            .with_limits(limits)
    }

    const UNSUBSCRIBE: &str = r#"<a href="{{ unsubscribe_url }}">u</a>"#;

    #[test]
    fn output_past_the_limit_is_a_render_failure_of_this_message() {
        let html = format!(
            "{{% for i in range(end=5000) %}}<p>line {{{{ i }}}}</p>{{% endfor %}}{UNSUBSCRIBE}"
        );
        let limits = RenderLimits {
            max_output_bytes: 10_000,
            ..RenderLimits::default()
        };
        let error = limited(&html, limits).render(&someone()).unwrap_err();
        assert!(
            matches!(
                error,
                RenderError::Limit {
                    limit: Limit::Output(10_000),
                    ..
                }
            ),
            "{error}"
        );
        assert!(!error.is_campaign_error(), "fails this message only");
        assert!(
            error.to_string().contains("MAILCAST_RENDER_MAX_BYTES"),
            "{error}"
        );
        let roomy = limited(&html, RenderLimits::default()).render(&someone());
        assert!(roomy.is_ok(), "the same template within the default limit");
    }

    #[test]
    fn a_slow_render_stops_at_the_time_limit() {
        let html = format!(
            "{{% for i in range(end=300) %}}{{% for j in range(end=300) %}}{{% for k in range(end=300) %}}{{{{ k }}}}{{% endfor %}}{{% endfor %}}{{% endfor %}}{UNSUBSCRIBE}"
        );
        let limits = RenderLimits {
            max_output_bytes: usize::MAX,
            max_time: Duration::from_millis(50),
            max_range_items: usize::MAX,
        };
        let started = std::time::Instant::now();
        let error = limited(&html, limits).render(&someone()).unwrap_err();
        assert!(
            matches!(
                error,
                RenderError::Limit {
                    limit: Limit::Time(_),
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            error.to_string().contains("MAILCAST_RENDER_TIMEOUT_MS"),
            "{error}"
        );
    }

    #[test]
    fn loops_that_write_nothing_stop_at_the_range_budget() {
        let html = format!(
            "{{% for i in range(end=100000) %}}{{% for j in range(end=100000) %}}{{% endfor %}}{{% endfor %}}{UNSUBSCRIBE}"
        );
        let started = std::time::Instant::now();
        let error = limited(&html, RenderLimits::default())
            .render(&someone())
            .unwrap_err();
        assert!(
            matches!(
                error,
                RenderError::Limit {
                    limit: Limit::Range(_),
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_budget_is_per_message_not_per_renderer() {
        let html = format!("{{% for i in range(end=60) %}}.{{% endfor %}}{UNSUBSCRIBE}");
        let limits = RenderLimits {
            max_range_items: 100,
            ..RenderLimits::default()
        };
        let renderer = limited(&html, limits);
        for _ in 0..5 {
            renderer
                .render(&someone())
                .expect("each message has its own budget");
        }
    }
}

//! The full per-recipient render (context, templates, link rewriting, text part, MIME)
//! of templates/weekly-picks: as shipped (with its text.txt), with the text part
//! generated from the HTML instead, and with each DKIM algorithm; plus the per-campaign
//! compile. Measured in thread CPU time (the per-core figure) and in wall time.
//!
//! `cargo bench --bench render`; figures go to src/render/BENCH.md.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailcast::links::KeyRing;
use mailcast::render::{
    Because, CampaignRenderer, DkimAlgorithm, DkimSettings, LinkSettings, RecipientContext,
    Recommendation, RenderSpec, load_template_dir,
};
use mailcast::store::{CampaignSettings, Product, Recipient, Template};
use sqlx::types::Json;

const RECIPIENTS: usize = 512;

fn spec() -> RenderSpec {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/weekly-picks");
    let new = load_template_dir(root).expect("templates/weekly-picks loads");
    let mut settings = CampaignSettings::default();
    settings.utm.insert("utm_source".into(), "mailcast".into());
    settings
        .utm
        .insert("utm_campaign".into(), "weekly-picks".into());
    RenderSpec {
        campaign_id: 7,
        campaign_name: "Weekly picks".into(),
        marketing: true,
        template: Template {
            id: 1,
            name: new.name,
            subject: new.subject,
            preheader: new.preheader,
            html: new.html,
            text: new.text,
        },
        from_name: "Northwind Shop".into(),
        from_email: "news@shop.example.com".into(),
        reply_to: None,
        settings,
        links: LinkSettings {
            base_url: "https://t.shop.example.com".into(),
            keyring: KeyRing::development(),
            list_id_domain: "lists.shop.example.com".into(),
        },
    }
}

fn product(i: i64) -> Product {
    Product {
        id: i,
        sku: format!("SKU-{i:04}"),
        name: format!("Trailblazer Running Shoe {i}"),
        url: format!("https://shop.example.com/p/SKU-{i:04}"),
        image_url: Some(format!("https://cdn.shop.example.com/SKU-{i:04}.jpg")),
        price_cents: 4_999 + i * 250,
        currency: "EUR".into(),
        category: "shoes".into(),
        in_stock: true,
    }
}

fn contexts() -> Vec<RecipientContext> {
    let products: Vec<Product> = (1..=60).map(product).collect();
    let names = ["Giorgia", "Laura", "Zoë", "José", "Ann", ""];
    (0..RECIPIENTS)
        .map(|i| {
            let tier = ["bronze", "silver", "gold"][i % 3];
            let attributes = serde_json::json!({
                "age": 20 + i % 50, "loyalty_tier": tier,
                "interests": ["running", "travel"], "birthday": "08-25"});
            let recipient = Recipient {
                id: 1_000 + i as i64,
                email: format!("person.{i}@example.org"),
                first_name: Some(names[i % names.len()].to_string()),
                last_name: Some("Costa".into()),
                country: Some("IT".into()),
                city: Some("Napoli".into()),
                attributes: Json(attributes),
                locale: Some("it-IT".into()),
                timezone: Some("Europe/Rome".into()),
                status: "active".into(),
                created_at: 1_700_000_000,
            };
            let recommendations = (0..4)
                .map(|k| Recommendation {
                    product: products[(i * 7 + k * 13) % products.len()].clone(),
                    reason: "often bought with your last purchase".into(),
                    because: Because::Trending,
                })
                .collect();
            RecipientContext {
                recipient,
                segments: if i % 4 == 0 {
                    vec!["vip".into()]
                } else {
                    vec![]
                },
                recommendations,
                cart: Vec::new(),
                trigger: None,
            }
        })
        .collect()
}

/// Keys are made on the spot, never committed: Ed25519 from random bytes, RSA with
/// openssl when it is installed.
fn dkim_keys() -> Vec<(&'static str, DkimSettings)> {
    use base64::Engine as _;
    let seed: [u8; 32] = rand::random();
    let mut keys = vec![(
        "dkim-ed25519",
        DkimSettings {
            domain: "shop.example.com".into(),
            selector: "bench".into(),
            algorithm: DkimAlgorithm::Ed25519,
            private_key: base64::engine::general_purpose::STANDARD.encode(seed),
        },
    )];
    let rsa = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output();
    match rsa {
        Ok(out) if out.status.success() => keys.push((
            "dkim-rsa2048",
            DkimSettings {
                domain: "shop.example.com".into(),
                selector: "bench".into(),
                algorithm: DkimAlgorithm::Rsa,
                private_key: String::from_utf8_lossy(&out.stdout).into_owned(),
            },
        )),
        _ => eprintln!("openssl not found: skipping the RSA DKIM benchmark"),
    }
    keys
}

/// Thread CPU time: the per-core cost, unaffected by other processes sharing the
/// machine (wall time is reported too).
struct CpuTime {
    wall: WallTime,
}

impl Default for CpuTime {
    fn default() -> Self {
        Self { wall: WallTime }
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is valid.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID unavailable");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn bench_render<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let contexts = contexts();
    let mut group = c.benchmark_group(format!("render-{clock}/weekly-picks"));
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(6));
    let plain = CampaignRenderer::new(spec()).expect("weekly-picks compiles");
    let mut i = 0;
    group.bench_function("no-dkim", |b| {
        b.iter(|| {
            i = (i + 1) % contexts.len();
            black_box(plain.render(&contexts[i]).expect("renders"))
        })
    });
    let mut html2text = spec();
    html2text.template.text = None;
    let generated = CampaignRenderer::new(html2text).expect("weekly-picks compiles");
    group.bench_function("no-dkim-text-from-html", |b| {
        b.iter(|| {
            i = (i + 1) % contexts.len();
            black_box(generated.render(&contexts[i]).expect("renders"))
        })
    });
    for (name, key) in dkim_keys() {
        let signed = CampaignRenderer::new(spec())
            .and_then(|r| r.with_dkim(&key))
            .expect("signing renderer");
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % contexts.len();
                black_box(signed.render(&contexts[i]).expect("renders"))
            })
        });
    }
    group.bench_function("compile-campaign", |b| {
        b.iter(|| black_box(CampaignRenderer::new(spec()).expect("compiles")))
    });
    group.finish();
}

fn cpu(c: &mut Criterion<CpuTime>) {
    bench_render(c, "cpu");
}

fn wall(c: &mut Criterion) {
    bench_render(c, "wall");
}

criterion_group! {
    name = per_core;
    config = Criterion::default().with_measurement(CpuTime::default());
    targets = cpu
}
criterion_group!(wall_clock, wall);
criterion_main!(per_core, wall_clock);

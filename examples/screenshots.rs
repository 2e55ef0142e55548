//! Screenshots of the dashboard's main pages at desktop (1280 px) and phone (390 px)
//! width, taken in Debian's headless Chromium from a running `mailcast serve`.
//! `benches/screenshots.sh` sets up the demo data and calls this:
//!
//! ```sh
//! cargo run --example screenshots -- http://127.0.0.1:8080 EMAIL PASSWORD OUT_DIR
//! ```

#[path = "../tests/it/support/browser.rs"]
mod browser;

use std::path::PathBuf;
use std::time::Duration;

use browser::Browser;

const WIDTHS: [(u32, &str); 2] = [(1280, "desktop"), (390, "phone")];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, email, password, out] = args.as_slice() else {
        eprintln!("usage: screenshots BASE_URL EMAIL PASSWORD OUT_DIR");
        std::process::exit(2);
    };
    let Some(browser) = Browser::start(1280, 900).await else {
        eprintln!("screenshots: needs /usr/bin/chromium and /usr/bin/chromedriver");
        std::process::exit(1);
    };
    sign_in(&browser, base, email, password).await;
    let pages = pages(&browser, base).await;
    let out = PathBuf::from(out);
    for (name, url) in &pages {
        for (width, label) in WIDTHS {
            let path = out.join(format!("{name}-{label}.png"));
            browser.screenshot_at(url, width, &path).await;
            if name == "segment-editor" {
                // The live count arrives after the page: wait, then take it again.
                browser.find("#segment-count").await;
                browser.screenshot(&path).await;
            }
            println!("{}", path.display());
        }
    }
    browser.quit().await;
}

async fn sign_in(browser: &Browser, base: &str, email: &str, password: &str) {
    browser.goto(&format!("{base}/app/login")).await;
    browser.find("#email").await.type_text(email).await;
    browser.find("#password").await.type_text(password).await;
    browser
        .find("form.stack button[type=submit]")
        .await
        .click()
        .await;
    browser
        .wait_for_text("h1", "Campaigns", Duration::from_secs(20))
        .await;
}

/// (file name, URL) of each page; the first campaign, recipient and automation on
/// their lists stand for their kind.
async fn pages(browser: &Browser, base: &str) -> Vec<(String, String)> {
    let mut pages = vec![("campaigns".to_string(), format!("{base}/app/campaigns"))];
    let first = |list: &'static str| async move {
        browser.goto(&format!("{base}/app/{list}")).await;
        let link = browser
            .try_find(&format!("main table a[href^='/app/{list}/']"))
            .await?;
        link.attribute("href").await
    };
    if let Some(href) = first("campaigns").await {
        pages.push(("campaign-results".into(), format!("{base}{href}")));
    }
    pages.push((
        "segment-editor".into(),
        format!("{base}/app/segments/{}", first_segment(browser, base).await),
    ));
    pages.push((
        "template-preview".into(),
        format!("{base}/app/templates/weekly-picks"),
    ));
    if let Some(href) = first("recipients").await {
        pages.push(("recipient".into(), format!("{base}{href}")));
    }
    if let Some(href) = first("automations").await {
        pages.push(("automation".into(), format!("{base}{href}")));
    }
    pages.push(("settings".into(), format!("{base}/app/settings")));
    pages
}

async fn first_segment(browser: &Browser, base: &str) -> String {
    browser.goto(&format!("{base}/app/segments")).await;
    match browser
        .try_find("main table a[href^='/app/segments/']")
        .await
    {
        Some(link) => {
            let href = link.attribute("href").await.unwrap_or_default();
            href.rsplit('/').next().unwrap_or("new").to_string()
        }
        None => "new".into(),
    }
}

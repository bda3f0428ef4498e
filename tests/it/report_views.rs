//! `GET /v1/reports/{id}` content negotiation (JSON, HTML, PDF, 406) and the
//! report's charts as PNG, on a report stored with a client's daily metrics.

use chrono::{Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{domain::metrics::DailyMetrics, store};
use uuid::Uuid;

use crate::support::TestApp;

/// A client with a week of Meta metrics, targets and a budget, and a stored report on it.
async fn report(app: &TestApp) -> (Value, Uuid) {
    let client = app
        .create_client(json!({
            "name": "Casa Verde", "currency": "BRL", "timezone": "America/Sao_Paulo",
            "accounts": {"meta": "act_123"}, "targets": {"cpa": 40.0, "roas": 2.5},
            "budgets": {"meta": 3000.0}
        }))
        .await;
    let client_id: Uuid = client["id"].as_str().unwrap().parse().unwrap();
    let end: NaiveDate = Utc::now().date_naive() - Duration::days(1);
    let days: Vec<DailyMetrics> = (0..14)
        .map(|i| DailyMetrics {
            date: end - Duration::days(i),
            spend: 100.0,
            impressions: 5000,
            clicks: 120,
            link_clicks: 100,
            conversions: 4.0,
            conversion_value: 300.0,
            currency: "BRL".into(),
        })
        .collect();
    let mut conn = app.pool.acquire().await.unwrap();
    store::metrics::upsert_days(&mut conn, client_id, "meta", "act_123", &days).await.unwrap();
    let figures = json!({});
    let new = store::reports::NewReport {
        client_id,
        run_id: None,
        kind: "weekly-report",
        period_start: end - Duration::days(6),
        period_end: end,
        body: "# A steady week\n\nCost per result held at R$ 25,00.",
        figures: &figures,
        model: Some("test-model"),
        input_tokens: Some(1),
        output_tokens: Some(1),
    };
    let row = store::reports::insert(&mut conn, &new).await.unwrap();
    (client, row.id)
}

#[sqlx::test]
async fn a_report_is_json_html_or_pdf_by_accept(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, id) = report(&app).await;
    let path = format!("/v1/reports/{id}");

    let default = app.get(&path).send().await;
    assert_eq!(default.status, 200, "{}", default.text());
    assert!(default.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(default.json()["id"], id.to_string());
    assert_eq!(default.header("vary"), Some("Accept"));

    let html = app.get(&path).header("accept", "text/html,application/xhtml+xml,*/*;q=0.8").send().await;
    assert_eq!(html.status, 200, "{}", html.text());
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    let page = html.text();
    assert!(page.contains("Casa Verde: weekly report") && page.contains("R$ 700,00") && page.contains("<svg"));
    assert!(page.contains("A steady week"));

    let pdf = app.get(&path).header("accept", "application/pdf").send().await;
    assert_eq!(pdf.status, 200, "{}", pdf.text());
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(pdf.body.starts_with(b"%PDF-"));
    let disposition = pdf.header("content-disposition").unwrap();
    assert!(disposition.ends_with(" weekly report.pdf\""), "{disposition}");
    // The same report renders to the same bytes.
    let again = app.get(&path).header("accept", "application/pdf").send().await;
    assert_eq!(pdf.body, again.body);

    let refused = app.get(&path).header("accept", "image/png").send().await;
    let problem = refused.problem(406, "not_acceptable");
    assert_eq!(refused.error_fields(), ["Accept"], "{problem}");

    let unknown = app.get(&format!("/v1/reports/{}", Uuid::now_v7())).header("accept", "application/pdf").send().await;
    unknown.problem(404, "not_found");
}

#[sqlx::test]
async fn each_chart_is_a_png_and_an_unknown_chart_is_named(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, id) = report(&app).await;
    for name in switchboard::render::CHART_NAMES {
        let res = app.get(&format!("/v1/reports/{id}/charts/{name}.png")).send().await;
        assert_eq!(res.status, 200, "{name}: {}", res.text());
        assert_eq!(res.header("content-type"), Some("image/png"));
        assert!(res.body.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}");
    }
    let res = app.get(&format!("/v1/reports/{id}/charts/pie.png")).send().await;
    let problem = res.problem(404, "not_found");
    assert!(problem["detail"].as_str().unwrap().contains("`pie.png`"), "{problem}");
    let res = app.get(&format!("/v1/reports/{id}/charts/roas")).send().await;
    res.problem(404, "not_found");
}

#[sqlx::test]
async fn rendered_views_need_clients_read(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, id) = report(&app).await;
    let token = app.token(&["workflows:read"]).await;
    for (path, accept) in
        [(format!("/v1/reports/{id}"), "application/pdf"), (format!("/v1/reports/{id}/charts/roas.png"), "image/png")]
    {
        let res = app.request(axum::http::Method::GET, &path).token(&token).header("accept", accept).send().await;
        assert_eq!(res.status, 403, "{path}: {}", res.text());
    }
}

#[sqlx::test]
async fn format_in_the_url_picks_the_form_whatever_accept_says(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, id) = report(&app).await;
    let path = format!("/v1/reports/{id}");

    // A link opened as is (no Accept), and one fetched by a client that asks for JSON.
    let pdf = app.get(&format!("{path}?format=pdf")).header("accept", "application/json").send().await;
    assert_eq!(pdf.status, 200, "{}", pdf.text());
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(pdf.body.starts_with(b"%PDF-"));
    let html = app.get(&format!("{path}?format=html")).header("accept", "image/png").send().await;
    assert_eq!(html.status, 200, "{}", html.text());
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(html.text().contains("Casa Verde: weekly report"));
    let json = app.get(&format!("{path}?format=json")).header("accept", "application/pdf").send().await;
    assert_eq!(json.status, 200, "{}", json.text());
    assert_eq!(json.json()["id"], id.to_string());

    let bad = app.get(&format!("{path}?format=xml")).send().await;
    let problem = bad.problem(400, "invalid_query");
    assert_eq!(bad.error_fields(), ["format"], "{problem}");
}

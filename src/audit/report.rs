//! `audit report`: one self-contained HTML page for people who would rather
//! look than query — requests and denials over time, denials per principal
//! and per resource prefix, the top deciding statements, error codes, each
//! log's verification, and a searchable table whose rows open to the full
//! record. Everything is inline (styles, an SVG chart, a little script, the
//! records as JSON): the page makes no request of its own, so it can be
//! mailed, archived and opened offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::Value;

use super::query::{principal_label, statement_of, str_of};

/// At most this many records are embedded for the table (the newest); the
/// charts and counts cover every record.
pub const MAX_TABLE_ROWS: usize = 5000;

/// One log's verification, as the page shows it.
pub struct Verification {
    pub log: String,
    pub intact: bool,
    pub summary: String,
}

/// What the page is drawn from.
#[derive(Default)]
struct Tally {
    total: u64,
    denied: u64,
    failed_auth: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    times: Vec<(DateTime<Utc>, bool)>,
    denied_by_principal: BTreeMap<String, u64>,
    denied_by_prefix: BTreeMap<String, u64>,
    statements: BTreeMap<String, (u64, u64)>,
    error_codes: BTreeMap<String, u64>,
}

fn denied(r: &Value) -> bool {
    r.get("decision")
        .and_then(|d| d.get("allowed"))
        .and_then(Value::as_bool)
        == Some(false)
}

/// `bucket/first-segment/` of what a request touched (a listing's prefix
/// counts as what it touched).
fn resource_prefix(r: &Value) -> Option<String> {
    let bucket = str_of(r, &["bucket"])?;
    let path = str_of(r, &["key"]).or_else(|| str_of(r, &["parameters", "prefix"]));
    Some(match path.and_then(|k| k.split_once('/')) {
        Some((first, _)) => format!("{bucket}/{first}/"),
        None => format!("{bucket}/"),
    })
}

impl Tally {
    fn add(&mut self, r: &Value) {
        self.total += 1;
        let is_denied = denied(r);
        if let Some(t) = str_of(r, &["time"])
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
        {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
            self.times.push((t, is_denied));
        }
        if str_of(r, &["auth", "failure"]).is_some() {
            self.failed_auth += 1;
        }
        if is_denied {
            self.denied += 1;
            *self
                .denied_by_principal
                .entry(principal_label(r))
                .or_default() += 1;
            if let Some(p) = resource_prefix(r) {
                *self.denied_by_prefix.entry(p).or_default() += 1;
            }
        }
        if let Some(st) = statement_of(r) {
            let e = self.statements.entry(st).or_default();
            if is_denied {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
        if let Some(code) = str_of(r, &["error_code"]) {
            *self.error_codes.entry(code.to_string()).or_default() += 1;
        }
    }
}

/// Text made safe for HTML (the five XML escapes serve HTML too).
fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// A bucket width that gives at most 48 bars over `span`.
fn bucket_width(span: Duration) -> Duration {
    [
        Duration::seconds(1),
        Duration::seconds(5),
        Duration::seconds(15),
        Duration::minutes(1),
        Duration::minutes(5),
        Duration::minutes(15),
        Duration::hours(1),
        Duration::hours(6),
        Duration::days(1),
        Duration::weeks(1),
    ]
    .into_iter()
    .find(|w| span.num_seconds() / w.num_seconds().max(1) < 48)
    .unwrap_or(Duration::weeks(4))
}

/// Requests (grey) and denials (red) over time, as an inline SVG.
fn timeline(t: &Tally) -> String {
    let (Some(first), Some(last)) = (t.first, t.last) else {
        return "<p>No records.</p>".to_string();
    };
    let width = bucket_width(last - first);
    let start = first.duration_trunc(width).unwrap_or(first);
    let n = ((last - start).num_seconds() / width.num_seconds()) as usize + 1;
    let mut bars = vec![(0u64, 0u64); n];
    for (time, is_denied) in &t.times {
        let i = (((*time - start).num_seconds() / width.num_seconds()) as usize).min(n - 1);
        bars[i].0 += 1;
        if *is_denied {
            bars[i].1 += 1;
        }
    }
    let max = bars.iter().map(|b| b.0).max().unwrap_or(1).max(1) as f64;
    let (w, h) = (720.0, 160.0);
    let bw = w / n as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {}\" class=\"chart\" role=\"img\" aria-label=\"requests and denials over time\">",
        h + 20.0
    );
    for (i, (all, den)) in bars.iter().enumerate() {
        let x = i as f64 * bw;
        let ha = *all as f64 / max * h;
        let hd = *den as f64 / max * h;
        let at = start + width * i as i32;
        let _ = write!(
            svg,
            "<g><title>{} — {all} requests, {den} denied</title><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ha:.1}\" class=\"all\"/><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hd:.1}\" class=\"denied\"/></g>",
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            h - ha,
            (bw - 1.0).max(1.0),
            h - hd,
            (bw - 1.0).max(1.0),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{}\">{}</text><text x=\"{w}\" y=\"{}\" text-anchor=\"end\">{}</text></svg>",
        h + 16.0,
        esc(&start.format("%Y-%m-%d %H:%M").to_string()),
        h + 16.0,
        esc(&last.format("%Y-%m-%d %H:%M UTC").to_string()),
    );
    let secs = width.num_seconds();
    let each = match secs {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hour(s)", s / 3_600),
        s if s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    };
    format!(
        "{svg}<p class=\"note\">Each bar is {each}; <span class=\"key all\"></span> requests, <span class=\"key denied\"></span> denied.</p>"
    )
}

/// A ranked table with proportional bars.
fn ranked(title: &str, rows: Vec<(String, u64)>, limit: usize) -> String {
    let mut rows = rows;
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(limit);
    let max = rows.first().map_or(1, |r| r.1.max(1)) as f64;
    let mut out = format!("<section><h2>{}</h2>", esc(title));
    if rows.is_empty() {
        out.push_str("<p class=\"note\">None.</p>");
    } else {
        out.push_str("<table class=\"ranked\">");
        for (name, n) in rows {
            // Allowing statements are drawn grey, everything else red.
            let class = if name.starts_with("allow ·") {
                "allow"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr class=\"{class}\"><td class=\"name\">{}</td><td class=\"n\">{n}</td><td class=\"bar\"><div style=\"width:{:.0}%\"></div></td></tr>",
                esc(&name),
                n as f64 / max * 100.0
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
    out
}

/// Renders the page. `records` are those selected, in time order.
pub fn render(
    records: &[Value],
    verification: &[Verification],
    generated: DateTime<Utc>,
) -> String {
    let mut t = Tally::default();
    for r in records {
        t.add(r);
    }
    let table_rows = &records[records.len().saturating_sub(MAX_TABLE_ROWS)..];
    // `</script>` inside a record must not end the data block.
    let data = serde_json::to_string(table_rows)
        .unwrap_or_else(|_| "[]".to_string())
        .replace('<', "\\u003c");
    let mut page = String::with_capacity(data.len() + 16 * 1024);
    page.push_str(HEAD);
    let _ = write!(
        page,
        "<header><h1>s3warden audit report</h1><p>{} records{}, generated {}</p></header>",
        t.total,
        match (t.first, t.last) {
            (Some(f), Some(l)) => format!(
                " from {} to {}",
                f.format("%Y-%m-%d %H:%M:%S UTC"),
                l.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            _ => String::new(),
        },
        generated.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let _ = write!(
        page,
        "<section class=\"cards\"><div class=\"card\"><b>{}</b>requests</div><div class=\"card bad\"><b>{}</b>denied</div><div class=\"card bad\"><b>{}</b>failed sign-ins</div><div class=\"card\"><b>{}</b>principals</div></section>",
        t.total,
        t.denied,
        t.failed_auth,
        records
            .iter()
            .map(principal_label)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    page.push_str("<section><h2>Log integrity</h2><ul class=\"verify\">");
    for v in verification {
        let _ = write!(
            page,
            "<li class=\"{}\"><b>{}</b> {}<pre>{}</pre></li>",
            if v.intact { "ok" } else { "bad" },
            if v.intact { "intact" } else { "TAMPERED" },
            esc(&v.log),
            esc(&v.summary)
        );
    }
    page.push_str("</ul></section>");
    let _ = write!(
        page,
        "<section><h2>Requests and denials over time</h2>{}</section><div class=\"grid\">",
        timeline(&t)
    );
    page.push_str(&ranked(
        "Denials per principal",
        t.denied_by_principal.into_iter().collect(),
        15,
    ));
    page.push_str(&ranked(
        "Denials per resource prefix",
        t.denied_by_prefix.into_iter().collect(),
        15,
    ));
    let mut statements: Vec<(String, u64)> = Vec::new();
    for (st, (allow, deny)) in &t.statements {
        if *allow > 0 {
            statements.push((format!("allow · {st}"), *allow));
        }
        if *deny > 0 {
            statements.push((format!("deny · {st}"), *deny));
        }
    }
    page.push_str(&ranked("Top deciding statements", statements, 15));
    page.push_str(&ranked(
        "Error codes",
        t.error_codes.into_iter().collect(),
        15,
    ));
    let _ = write!(
        page,
        "</div><section><h2>Records</h2><p class=\"note\">{} shown{}; click a row for the full record.</p><input id=\"q\" type=\"search\" placeholder=\"Search every field (principal, key, request id, error…)\" autocomplete=\"off\"><p id=\"count\" class=\"note\"></p><table id=\"records\"><thead><tr><th>time</th><th>principal</th><th>operation</th><th>decision</th><th>status</th><th>error</th><th>target</th></tr></thead><tbody></tbody></table></section>",
        table_rows.len(),
        if table_rows.len() < records.len() {
            format!(" (the newest of {})", records.len())
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        page,
        "<script type=\"application/json\" id=\"data\">{data}</script><script>{SCRIPT}</script></body></html>"
    );
    page
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>s3warden audit report</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:1rem 1.5rem;color:#1d2430;background:#fafbfc}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.4rem 0 .5rem;color:#33415c}
header p,.note{color:#5b6475;margin:.2rem 0}
.cards{display:flex;gap:.8rem;flex-wrap:wrap;margin-top:1rem}
.card{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:.6rem 1rem;min-width:8rem;color:#5b6475}
.card b{display:block;font-size:1.6rem;color:#1d2430}.card.bad b{color:#b42318}
.chart{width:100%;height:auto;background:#fff;border:1px solid #dde2ea;border-radius:8px}
.chart text{font-size:11px;fill:#5b6475}
rect.all,.key.all{fill:#9aa8bd;background:#9aa8bd}rect.denied,.key.denied{fill:#d92d20;background:#d92d20}
.key{display:inline-block;width:.8em;height:.8em;border-radius:2px;vertical-align:middle}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:0 1.5rem}
table{border-collapse:collapse;width:100%}
.ranked td{padding:.2rem .4rem;border-bottom:1px solid #eef0f4}.ranked .name{word-break:break-all}
.ranked .n{text-align:right;width:3.5rem;font-variant-numeric:tabular-nums}.ranked .bar{width:35%}
.ranked .bar div{height:.7rem;background:#d92d20;border-radius:3px;opacity:.75}.ranked tr.allow .bar div{background:#9aa8bd}
.verify{list-style:none;padding:0}.verify li{background:#fff;border:1px solid #dde2ea;border-left:4px solid #12b76a;border-radius:6px;padding:.4rem .8rem;margin:.4rem 0}
.verify li.bad{border-left-color:#d92d20}.verify pre{margin:.3rem 0 0;white-space:pre-wrap;color:#5b6475}
#q{width:100%;box-sizing:border-box;padding:.5rem .7rem;font-size:1rem;border:1px solid #c4ccd8;border-radius:6px}
#records{background:#fff;border:1px solid #dde2ea;margin-top:.4rem}
#records th{text-align:left;background:#eef1f6;padding:.35rem .5rem;position:sticky;top:0}
#records td{padding:.3rem .5rem;border-top:1px solid #eef0f4;vertical-align:top;word-break:break-all}
#records tr.row{cursor:pointer}#records tr.row:hover{background:#f3f6fb}
#records tr.deny td.d{color:#b42318;font-weight:600}
#records pre{margin:0;white-space:pre-wrap;font-size:12px;background:#f6f8fa;padding:.6rem;border-radius:4px}
</style></head><body>
"#;

/// Builds the table from the embedded records; filters as one types; a
/// click shows the full record. No network, no libraries.
const SCRIPT: &str = r#"
(function(){
var data=JSON.parse(document.getElementById('data').textContent);
var body=document.querySelector('#records tbody'),q=document.getElementById('q'),count=document.getElementById('count');
function get(r,p){for(var i=0;i<p.length;i++){if(r==null)return undefined;r=r[p[i]];}return r;}
function who(r){return get(r,['principal','user_name'])||get(r,['principal','arn'])||get(r,['auth','access_key_id'])||'anonymous';}
function cell(tr,text,cls){var td=document.createElement('td');td.textContent=text==null?'-':String(text);if(cls)td.className=cls;tr.appendChild(td);}
var rows=data.map(function(r){
  var tr=document.createElement('tr');tr.className='row';
  var allowed=get(r,['decision','allowed']);
  if(allowed===false)tr.className+=' deny';
  cell(tr,r.time);cell(tr,who(r));cell(tr,r.operation);
  cell(tr,allowed===true?'allow':allowed===false?'deny':'-','d');
  cell(tr,r.status);cell(tr,r.error_code||get(r,['auth','failure']));
  cell(tr,r.bucket?(r.bucket+(r.key?'/'+r.key:'')):'-');
  var detail=null;
  tr.addEventListener('click',function(){
    if(detail){detail.remove();detail=null;return;}
    detail=document.createElement('tr');var td=document.createElement('td');td.colSpan=7;
    var pre=document.createElement('pre');pre.textContent=JSON.stringify(r,null,2);td.appendChild(pre);detail.appendChild(td);
    tr.after(detail);
  });
  return {tr:tr,text:JSON.stringify(r).toLowerCase(),close:function(){if(detail){detail.remove();detail=null;}}};
});
for(var i=rows.length-1;i>=0;i--)body.appendChild(rows[i].tr);
function filter(){
  var words=q.value.toLowerCase().split(/\s+/).filter(Boolean),shown=0;
  rows.forEach(function(x){var ok=words.every(function(w){return x.text.indexOf(w)>=0;});x.tr.style.display=ok?'':'none';if(!ok)x.close();if(ok)shown++;});
  count.textContent=shown+' of '+rows.length+' records match';
}
q.addEventListener('input',filter);filter();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_page_is_self_contained_and_counts_what_it_shows() {
        let records = vec![
            json!({"time": "2026-12-02T10:00:00.000Z", "request_id": "A", "principal": {"user_name": "alice"},
                   "operation": "GetObject", "bucket": "shared", "key": "alice/a", "decision": {"allowed": true, "reason": "allowed by p statement S", "policy": "p", "statement": "S"}, "status": 200}),
            json!({"time": "2026-12-02T11:30:00.000Z", "request_id": "B", "principal": {"user_name": "bob"},
                   "operation": "GetObject", "bucket": "shared", "key": "alice/</script><script>alert(1)</script>", "decision": {"allowed": false, "reason": "no statement allows"}, "status": 403, "error_code": "AccessDenied"}),
            json!({"time": "2026-12-02T12:00:00.000Z", "request_id": "C", "auth": {"access_key_id": "AKX", "failure": "unknown key"}, "status": 403, "error_code": "InvalidAccessKeyId"}),
        ];
        let v = [Verification {
            log: "audit.jsonl".into(),
            intact: true,
            summary: "3 records".into(),
        }];
        let page = render(&records, &v, "2026-12-03T00:00:00Z".parse().unwrap());
        for external in ["src=\"http", "href=\"http", "<link", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "a key cannot end the data block"
        );
        assert!(page.contains("<b>3</b>requests"));
        assert!(page.contains("<b>1</b>denied"));
        assert!(page.contains("<b>1</b>failed sign-ins"));
        assert!(
            page.contains("shared/alice/"),
            "denials per resource prefix"
        );
        assert!(page.contains("allow · p/S"));
        assert!(page.contains("InvalidAccessKeyId"));
        assert!(page.contains("Each bar is 5 minute(s)"));
    }
}

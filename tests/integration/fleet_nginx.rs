//! The README's "Running a fleet" example, run: three instances on one
//! PostgreSQL store behind nginx (Debian's), driven with the aws CLI through
//! nginx. A user made through the load balancer works on whichever instance
//! serves each request, and an instance stopped mid-run is routed around.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::fleet::Fleet;

/// nginx in the foreground with a config of the test's own; stopped on drop.
struct Nginx {
    child: Child,
    endpoint: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's nginx configuration, around the given instances.
fn nginx_config(prefix: &std::path::Path, port: u16, instances: &[String]) -> String {
    let servers: String = instances
        .iter()
        .map(|e| {
            format!(
                "        server {} max_fails=1 fail_timeout=5s;\n",
                e.trim_start_matches("http://")
            )
        })
        .collect();
    format!(
        r#"
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream s3warden {{
{servers}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://s3warden;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"#,
        prefix = prefix.display()
    )
}

fn start_nginx(prefix: &std::path::Path, instances: &[String]) -> Nginx {
    let port = free_port();
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, nginx_config(prefix, port, instances)).unwrap();
    // Debian installs it in /usr/sbin, which not every PATH holds.
    let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nginx");
    let child = Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx runs (Debian's nginx; scripts/test installs it)");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nginx did not listen: {}",
            std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

fn aws_ok(endpoint: &str, key: &str, secret: &str, args: &[&str]) -> String {
    let out = run_aws(endpoint, key, secret, args);
    assert!(
        out.status.success(),
        "aws {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_nginx_serve_the_aws_cli_and_survive_one_stopping() {
    let mut f = Fleet::start(3).await;
    let endpoints: Vec<String> = (0..3).map(|i| f.endpoint(i)).collect();
    let prefix = f.dir.path().join("nginx");
    std::fs::create_dir_all(&prefix).unwrap();
    let lb = start_nginx(&prefix, &endpoints);
    let e = lb.endpoint.clone();

    // The administrator works through the load balancer only.
    let policy = f.dir.path().join("own-prefix.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::shared/${aws:username}/*"}]}"#,
    )
    .unwrap();
    let policy_arg = format!("file://{}", policy.display());
    let e2 = e.clone();
    let key = tokio::task::spawn_blocking(move || {
        let root = |args: &[&str]| aws_ok(&e2, ROOT_KEY, ROOT_SECRET, args);
        root(&["s3", "mb", "s3://shared"]);
        root(&["iam", "create-user", "--user-name", "erin"]);
        root(&[
            "iam",
            "put-user-policy",
            "--user-name",
            "erin",
            "--policy-name",
            "own-prefix",
            "--policy-document",
            &policy_arg,
        ]);
        root(&[
            "iam",
            "create-access-key",
            "--user-name",
            "erin",
            "--query",
            "AccessKey.[AccessKeyId,SecretAccessKey]",
            "--output",
            "text",
        ])
    })
    .await
    .unwrap();
    let mut parts = key.split_whitespace();
    let (k, s) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
    );
    // The key is on every instance within a second; after that, requests
    // spread round-robin over all three all succeed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let file = f.dir.path().join("report.txt");
    std::fs::write(&file, b"quarterly numbers").unwrap();
    let (e3, k3, s3, file3) = (e.clone(), k.clone(), s.clone(), file.clone());
    tokio::task::spawn_blocking(move || {
        for i in 0..6 {
            let dest = format!("s3://shared/erin/report-{i}.txt");
            aws_ok(&e3, &k3, &s3, &["s3", "cp", file3.to_str().unwrap(), &dest]);
        }
        let denied = run_aws(
            &e3,
            &k3,
            &s3,
            &[
                "s3",
                "cp",
                file3.to_str().unwrap(),
                "s3://shared/frank/x.txt",
            ],
        );
        assert!(!denied.status.success());
        assert!(
            String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"),
            "{denied:?}"
        );
    })
    .await
    .unwrap();
    for i in 0..3 {
        let url = format!("http://{}/readyz", f.instances[i].metrics_addr().unwrap());
        let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        assert!(
            body.starts_with("ready\nidentity store: postgres"),
            "{body}"
        );
    }

    // One instance stops; nginx routes around it.
    f.instances.remove(1).shutdown().await;
    let (e4, k4, s4) = (e.clone(), k.clone(), s.clone());
    tokio::task::spawn_blocking(move || {
        for i in 0..6 {
            let src = format!("s3://shared/erin/report-{i}.txt");
            let out = aws_ok(&e4, &k4, &s4, &["s3", "cp", &src, "-"]);
            assert_eq!(out, "quarterly numbers");
        }
    })
    .await
    .unwrap();
    drop(lb);
}

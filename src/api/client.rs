//! A minimal Query API client for the `s3warden sessions` command: signs one
//! IAM call with the root key of a config file and sends it to the s3warden
//! running with that config (over TLS when the config has `[tls]`, trusting
//! its own certificate), so that changes go through the running server's
//! store and directory rather than behind its back.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::xml::escape;
use crate::config::Config;

/// Why a call to the running server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach s3warden at {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("signing the request failed: {0}")]
    Signing(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("s3warden answered {status}: {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

fn element(body: &str, tag: &str) -> String {
    body.split(&format!("<{tag}>"))
        .nth(1)
        .and_then(|s| s.split(&format!("</{tag}>")).next())
        .unwrap_or("")
        .to_string()
}

/// Calls one IAM action as root on the server `config` describes and returns
/// the response body.
pub async fn call_iam(config: &Config, params: &[(&str, &str)]) -> Result<String, ClientError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let tls = config.tls.is_some();
    let url = format!("{}://{addr}/", if tls { "https" } else { "http" });
    let mut all: Vec<(&str, &str)> = vec![("Version", "2010-05-08")];
    all.extend_from_slice(params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&all)
        .finish();
    let identity = aws_credential_types::Credentials::new(
        &config.root.access_key_id,
        &config.root.secret_access_key,
        None,
        None,
        "s3warden-config",
    )
    .into();
    let signing = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("iam")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| ClientError::Signing(e.to_string()))?
        .into();
    let host = addr.to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.clone()),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ),
    ];
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| ClientError::Signing(e.to_string()))?;
    let (instructions, _) = sign(signable, &signing)
        .map_err(|e| ClientError::Signing(e.to_string()))?
        .into_parts();
    for h in instructions.into_parts().0 {
        headers.push((h.name().to_string(), h.value().to_string()));
    }
    let mut req = http::Request::builder().method("POST").uri("/");
    for (n, v) in &headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ClientError::Signing(e.to_string()))?;
    let connect = |e: std::io::Error| ClientError::Connect {
        addr: host.clone(),
        message: e.to_string(),
    };
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(connect)?;
    let (status, text) = if tls {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(config)?));
        let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
        let stream = connector.connect(name, stream).await.map_err(connect)?;
        exchange(TokioIo::new(stream), req, &host).await?
    } else {
        exchange(TokioIo::new(stream), req, &host).await?
    };
    if status != 200 {
        return Err(ClientError::Refused {
            status,
            code: element(&text, "Code"),
            message: element(&text, "Message"),
        });
    }
    Ok(text)
}

async fn exchange<I>(
    io: I,
    req: http::Request<Full<Bytes>>,
    host: &str,
) -> Result<(u16, String), ClientError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let failed = |e: hyper::Error| ClientError::Connect {
        addr: host.to_string(),
        message: e.to_string(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(failed)?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(failed)?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.map_err(failed)?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// The system's roots plus the server's own certificate (often self-signed).
fn tls_config(config: &Config) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(t) = &config.tls {
        let pem = std::fs::read(&t.cert)
            .map_err(|e| ClientError::Tls(format!("cannot read {:?}: {e}", t.cert)))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| ClientError::Tls(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Tls(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Revokes every session of a user or role issued before now; returns a
/// line for the operator.
pub async fn revoke_sessions(
    config: &Config,
    user: Option<&str>,
    role: Option<&str>,
) -> Result<String, ClientError> {
    let params: Vec<(&str, &str)> = match (user, role) {
        (Some(u), _) => vec![("Action", "RevokeSessions"), ("UserName", u)],
        (None, Some(r)) => vec![("Action", "RevokeSessions"), ("RoleName", r)],
        (None, None) => vec![("Action", "RevokeSessions")],
    };
    let body = call_iam(config, &params).await?;
    Ok(format!(
        "revoked the sessions of {} issued before {}",
        escape(&element(&body, "Arn")),
        element(&body, "RevokedBefore")
    ))
}

//! QR codes for portable reports: what a code holds (a link to the node's public lookup page
//! with the token in it, or the bare token) and drawing it as PNG or SVG.
//!
//! A token is base32, which lies inside the QR alphanumeric set (digits, upper-case letters,
//! space and `$%*+-./:`). The link is written in upper case so that the whole content stays
//! in that set and the code stays small: scheme and host are case-insensitive, and the
//! node's lookup path is `/T/`. This module never changes the token itself and never fetches
//! anything.

use std::path::Path;

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module in a PNG.
pub const PNG_MODULE_PIXELS: u32 = 4;
/// Light modules around the code, as the QR standard asks.
pub const QUIET_ZONE_MODULES: u32 = 4;

/// Why a QR code could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The content does not fit in any QR code version at the chosen error correction.
    #[error("the text ({0} characters) is too long for a QR code")]
    TooLong(usize),
    /// Encoding the image failed.
    #[error("cannot encode the image: {0}")]
    Image(String),
    /// Writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The content of a report's QR code: `HTTP://HOST:PORT/T/<token>` when the node's HTTP
/// address is known (e.g. `http://127.0.0.1:8101`), else the token alone.
pub fn content(token: &str, http_addr: Option<&str>) -> String {
    let Some(addr) = http_addr.map(str::trim).filter(|a| !a.is_empty()) else {
        return token.to_string();
    };
    let (scheme, rest) = addr.split_once("://").unwrap_or(("http", addr));
    // Only scheme and authority are kept; both are case-insensitive.
    let authority = rest.split('/').next().unwrap_or(rest);
    format!(
        "{}://{}/T/{token}",
        scheme.to_ascii_uppercase(),
        authority.to_ascii_uppercase()
    )
}

/// True when every character of `text` is in the QR alphanumeric set.
pub fn is_alphanumeric_mode(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b" $%*+-./:".contains(&b))
}

fn code(text: &str) -> Result<QrCode, QrError> {
    // Level M survives a smudged print or a creased label and still fits a long token.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| QrError::TooLong(text.chars().count()))
}

/// A QR code of `text` as a greyscale PNG.
///
/// # Errors
/// [`QrError::TooLong`] or [`QrError::Image`].
pub fn png(text: &str) -> Result<Vec<u8>, QrError> {
    let code = code(text)?;
    let modules = code.width() as u32;
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE_MODULES) * PNG_MODULE_PIXELS;
    let image = image::GrayImage::from_fn(side, side, |x, y| {
        let mx = (x / PNG_MODULE_PIXELS).checked_sub(QUIET_ZONE_MODULES);
        let my = (y / PNG_MODULE_PIXELS).checked_sub(QUIET_ZONE_MODULES);
        let dark = match (mx, my) {
            (Some(mx), Some(my)) if mx < modules && my < modules => {
                colors[(my * modules + mx) as usize] == Color::Dark
            }
            _ => false,
        };
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| QrError::Image(e.to_string()))?;
    Ok(bytes)
}

/// A QR code of `text` as an SVG document.
///
/// # Errors
/// [`QrError::TooLong`].
pub fn svg(text: &str) -> Result<String, QrError> {
    let code = code(text)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(256, 256)
        .build())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), QrError> {
    std::fs::write(path, bytes).map_err(|source| QrError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes a PNG QR code of `text` to `path`.
///
/// # Errors
/// Any [`QrError`].
pub fn write_png(path: &Path, text: &str) -> Result<(), QrError> {
    write(path, &png(text)?)
}

/// Writes an SVG QR code of `text` to `path`.
///
/// # Errors
/// Any [`QrError`].
pub fn write_svg(path: &Path, text: &str) -> Result<(), QrError> {
    write(path, svg(text)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use huren_proto::pb;

    fn token() -> String {
        // A real report entry, signed, as the node would hand it out.
        let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
        let report = crate::sample::day("shanxi", 11, 1, 1_796_313_600_000).remove(0);
        let entry = pb::Entry {
            format: 1,
            log: "shanxi".into(),
            seq: 1,
            prev_hash: vec![0; 32],
            time_ms: 1_796_340_000_000,
            request_id: "r-1".into(),
            event: Some(pb::Event {
                kind: Some(pb::event::Kind::ReportIssued(report)),
            }),
        };
        huren_proto::token::encode(&huren_proto::format::sign_entry(&key, &entry))
    }

    fn decode_png(bytes: &[u8]) -> String {
        let image = image::load_from_memory(bytes).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        grids[0].decode().unwrap().1
    }

    #[test]
    fn a_png_qr_code_decodes_back_to_the_token() {
        let token = token();
        let bytes = png(&token).unwrap();
        assert_eq!(decode_png(&bytes), token);
        assert!(huren_proto::token::decode(&decode_png(&bytes)).is_ok());
    }

    #[test]
    fn a_link_qr_code_is_alphanumeric_and_decodes_to_the_link() {
        let token = token();
        let link = content(&token, Some("http://127.0.0.1:8101"));
        assert_eq!(link, format!("HTTP://127.0.0.1:8101/T/{token}"));
        assert!(is_alphanumeric_mode(&link));
        let decoded = decode_png(&png(&link).unwrap());
        assert_eq!(decoded, link);
        assert_eq!(
            huren_proto::token::decode(&decoded).unwrap(),
            huren_proto::token::decode(&token).unwrap()
        );
        assert_eq!(content(&token, None), token);
        assert_eq!(
            content("HR1AB", Some("https://market.example/ignored")),
            "HTTPS://MARKET.EXAMPLE/T/HR1AB"
        );
    }

    #[test]
    fn an_svg_qr_code_is_an_svg_document() {
        let text = svg("HR1ABC").unwrap();
        assert!(text.contains("<svg") && text.ends_with("</svg>"));
    }

    #[test]
    fn files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.png");
        write_png(&path, "HR1ABC").unwrap();
        assert_eq!(decode_png(&std::fs::read(&path).unwrap()), "HR1ABC");
    }
}

//! The renderer's work: an untrusted Markdown page parsed (`pulldown-cmark`), laid out
//! and drawn (`tiny-skia`, `ab_glyph`), its images and stylesheet read with plain
//! `std::fs` calls — which the broker answers beneath this site's folder only — and
//! decoded here, inside the sandbox (`image`, with limits).

use crate::paint::{self, rgb, Fonts};
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use tiny_skia::Pixmap;

/// A page's width in pixels; its height follows its content, up to [`MAX_HEIGHT`].
pub const WIDTH: u32 = 800;
/// The tallest page drawn.
pub const MAX_HEIGHT: u32 = 3000;
const MARGIN: f32 = 40.0;

/// One block of a page, in order.
enum Block {
    Heading(u8, String),
    Paragraph(String),
    Item(String),
    Code(String),
    Image { src: String },
    Rule,
}

/// The colours a site's `style.txt` may set (`name = #rrggbb` lines).
struct Style {
    background: [u8; 3],
    text: [u8; 3],
    accent: [u8; 3],
}

fn style(site: &str) -> Style {
    let mut s = Style {
        background: rgb(0xffffff),
        text: rgb(0x202124),
        accent: rgb(0x1a73e8),
    };
    // Read like any file a page names: through the broker, beneath this site only.
    let Ok(sheet) = std::fs::read_to_string(format!("{site}/style.txt")) else {
        return s;
    };
    for line in sheet.lines().take(32) {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let hex = value.trim().trim_start_matches('#');
        let Ok(color) = u32::from_str_radix(hex, 16) else {
            continue;
        };
        match name.trim() {
            "background" => s.background = rgb(color),
            "text" => s.text = rgb(color),
            "accent" => s.accent = rgb(color),
            _ => {}
        }
    }
    s
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut heading = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some(match level {
                    HeadingLevel::H1 => 1,
                    HeadingLevel::H2 => 2,
                    _ => 3,
                })
            }
            Event::Start(Tag::Image { dest_url, .. }) => out.push(Block::Image {
                src: dest_url.to_string(),
            }),
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::Rule => out.push(Block::Rule),
            Event::End(TagEnd::Heading(_)) => out.push(Block::Heading(
                heading.take().unwrap_or(3),
                std::mem::take(&mut text),
            )),
            Event::End(TagEnd::Image) => text.clear(),
            Event::End(TagEnd::Paragraph) if !text.trim().is_empty() => {
                out.push(Block::Paragraph(std::mem::take(&mut text)))
            }
            Event::End(TagEnd::Item) => out.push(Block::Item(std::mem::take(&mut text))),
            Event::End(TagEnd::CodeBlock) => out.push(Block::Code(std::mem::take(&mut text))),
            _ => {}
        }
    }
    out
}

/// An image of the site, decoded here with limits (a decompression bomb or a
/// malformed file is an error, not a crash); `Err` says why it is not shown.
fn image(site: &str, src: &str) -> Result<Pixmap, String> {
    if src.starts_with('/') || src.contains("://") {
        return Err(format!("{src}: only the site's own files"));
    }
    let bytes = std::fs::read(format!("{site}/{src}")).map_err(|e| format!("{src}: {e}"))?;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("{src}: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(4096);
    limits.max_image_height = Some(4096);
    limits.max_alloc = Some(64 << 20);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| format!("{src}: {e}"))?;
    let rgba = decoded.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut data = rgba.into_raw();
    for px in data.chunks_exact_mut(4) {
        let a = u16::from(px[3]);
        for c in &mut px[..3] {
            *c = (u16::from(*c) * a / 255) as u8;
        }
    }
    let size = tiny_skia::IntSize::from_wh(w, h).ok_or_else(|| format!("{src}: empty"))?;
    Pixmap::from_vec(data, size).ok_or_else(|| format!("{src}: bad size"))
}

/// Draw the page `markdown` of the site at `site`; also what went wrong on the way
/// (resources refused or broken), for the broker's table.
pub fn render(fonts: &Fonts, site: &str, markdown: &str) -> (Pixmap, Vec<String>) {
    let style = style(site);
    let mut notes = Vec::new();
    let mut p = Pixmap::new(WIDTH, MAX_HEIGHT).expect("non-zero size");
    let (w, h) = (WIDTH as f32, MAX_HEIGHT as f32);
    paint::rect(&mut p, 0.0, 0.0, w, h, style.background);
    let inner = w - 2.0 * MARGIN;
    let mut y = MARGIN;
    for block in blocks(markdown) {
        if y > h - 100.0 {
            notes.push("page cut at its maximum height".into());
            break;
        }
        match block {
            Block::Heading(level, t) => {
                let size = [36.0, 28.0, 22.0][usize::from(level.clamp(1, 3) - 1)];
                y += size * 0.6;
                for line in paint::wrap(&fonts.text, size, &t, inner) {
                    y += size * 1.2;
                    paint::text(&mut p, &fonts.text, size, MARGIN, y, &line, style.accent);
                }
                y += size * 0.4;
            }
            Block::Paragraph(t) => y = paragraph(&mut p, fonts, &style, y, &t, false),
            Block::Item(t) => y = paragraph(&mut p, fonts, &style, y, &t, true),
            Block::Code(t) => {
                let lines: Vec<&str> = t.lines().take(40).collect();
                let box_h = lines.len() as f32 * 22.0 + 20.0;
                paint::rect(&mut p, MARGIN, y + 6.0, inner, box_h, rgb(0xf1f3f4));
                for line in lines {
                    y += 22.0;
                    paint::text(
                        &mut p,
                        &fonts.mono,
                        15.0,
                        MARGIN + 12.0,
                        y + 10.0,
                        line,
                        rgb(0x202124),
                    );
                }
                y += 36.0;
            }
            Block::Image { src } => match image(site, &src) {
                Ok(img) => {
                    let scale = (inner / img.width() as f32)
                        .min(360.0 / img.height() as f32)
                        .min(1.0);
                    let (iw, ih) = (img.width() as f32 * scale, img.height() as f32 * scale);
                    paint::picture(&mut p, &img, MARGIN, y + 10.0, iw, ih);
                    y += ih + 20.0;
                }
                Err(why) => {
                    paint::rect(&mut p, MARGIN, y + 10.0, inner, 60.0, rgb(0xfce8e6));
                    paint::text(
                        &mut p,
                        &fonts.mono,
                        14.0,
                        MARGIN + 10.0,
                        y + 46.0,
                        &format!("✗ {why}"),
                        rgb(0xb3261e),
                    );
                    notes.push(why);
                    y += 80.0;
                }
            },
            Block::Rule => {
                y += 16.0;
                paint::rect(&mut p, MARGIN, y, inner, 2.0, style.accent);
                y += 16.0;
            }
        }
    }
    let height = ((y + MARGIN) as u32).clamp(200, MAX_HEIGHT);
    (crop(&p, height), notes)
}

/// A paragraph (a list item with a bullet) from `y`; the `y` after it.
fn paragraph(p: &mut Pixmap, fonts: &Fonts, style: &Style, mut y: f32, t: &str, item: bool) -> f32 {
    let indent = if item { 22.0 } else { 0.0 };
    let inner = WIDTH as f32 - 2.0 * MARGIN - indent;
    for (i, line) in paint::wrap(&fonts.text, 18.0, t, inner).iter().enumerate() {
        y += 26.0;
        if i == 0 && item {
            paint::text(p, &fonts.text, 18.0, MARGIN + 4.0, y, "•", style.accent);
        }
        paint::text(p, &fonts.text, 18.0, MARGIN + indent, y, line, style.text);
    }
    y + if item { 2.0 } else { 10.0 }
}

/// The top `height` rows of `p`.
fn crop(p: &Pixmap, height: u32) -> Pixmap {
    let rows = (p.width() * height * 4) as usize;
    let data = p.data()[..rows].to_vec();
    let size = tiny_skia::IntSize::from_wh(p.width(), height).expect("non-zero size");
    Pixmap::from_vec(data, size).expect("size matches")
}

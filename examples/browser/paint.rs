//! Drawing shared by the renderer (pages) and the broker (sad tabs, the overview):
//! text with a font the `epaint_default_fonts` crate ships (no system fonts), boxes,
//! scaled pictures, on `tiny-skia` pixmaps.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use tiny_skia::{Color, Paint, Pixmap, PixmapPaint, Rect, Transform};

/// The two faces: proportional text and monospace code.
pub struct Fonts {
    pub text: FontRef<'static>,
    pub mono: FontRef<'static>,
}

/// The fonts, from the bytes compiled into this binary.
pub fn fonts() -> Fonts {
    // Both are valid TrueType files shipped by the crate; a failure is a build error.
    let load = |bytes: &'static [u8]| FontRef::try_from_slice(bytes).expect("bundled font");
    Fonts {
        text: load(epaint_default_fonts::UBUNTU_LIGHT),
        mono: load(epaint_default_fonts::HACK_REGULAR),
    }
}

/// An opaque colour from 0xRRGGBB.
pub fn rgb(hex: u32) -> [u8; 3] {
    [(hex >> 16) as u8, (hex >> 8) as u8, hex as u8]
}

/// The width of `text` at `size` pixels.
pub fn text_width(font: &FontRef<'_>, size: f32, text: &str) -> f32 {
    let scaled = font.as_scaled(PxScale::from(size));
    text.chars()
        .map(|c| scaled.h_advance(font.glyph_id(c)))
        .sum()
}

/// `text` broken into lines no wider than `width` (at spaces; a longer word alone).
pub fn wrap(font: &FontRef<'_>, size: f32, text: &str, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if !line.is_empty() && text_width(font, size, &candidate) > width {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Draw `text` with its baseline at `y`, from `x`; returns the x after it.
pub fn text(
    pixmap: &mut Pixmap,
    font: &FontRef<'_>,
    size: f32,
    x: f32,
    y: f32,
    s: &str,
    color: [u8; 3],
) -> f32 {
    let scaled = font.as_scaled(PxScale::from(size));
    let (w, h) = (pixmap.width() as i32, pixmap.height() as i32);
    let mut caret = x;
    let pixels = pixmap.data_mut();
    for c in s.chars() {
        let id = font.glyph_id(c);
        let glyph = id.with_scale_and_position(size, point(caret, y));
        caret += scaled.h_advance(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let (px, py) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
            if px < 0 || py < 0 || px >= w || py >= h {
                return;
            }
            let at = ((py * w + px) * 4) as usize;
            let a = coverage.clamp(0.0, 1.0);
            for (i, channel) in color.iter().enumerate() {
                let dst = f32::from(pixels[at + i]);
                pixels[at + i] = (f32::from(*channel) * a + dst * (1.0 - a)) as u8;
            }
            pixels[at + 3] = 255;
        });
    }
    caret
}

/// Fill a rectangle (ignored if empty or outside).
pub fn rect(pixmap: &mut Pixmap, x: f32, y: f32, w: f32, h: f32, color: [u8; 3]) {
    let mut paint = Paint::default();
    paint.set_color(Color::from_rgba8(color[0], color[1], color[2], 255));
    if let Some(r) = Rect::from_xywh(x, y, w, h) {
        pixmap.fill_rect(r, &paint, Transform::identity(), None);
    }
}

/// Draw `src` scaled into the box at (`x`, `y`) of `w` × `h`.
pub fn picture(pixmap: &mut Pixmap, src: &Pixmap, x: f32, y: f32, w: f32, h: f32) {
    let sx = w / src.width() as f32;
    let sy = h / src.height() as f32;
    let paint = PixmapPaint {
        quality: tiny_skia::FilterQuality::Bilinear,
        ..PixmapPaint::default()
    };
    pixmap.draw_pixmap(
        0,
        0,
        src.as_ref(),
        &paint,
        Transform::from_row(sx, 0.0, 0.0, sy, x, y),
        None,
    );
}

/// The page a broker shows where a renderer died: a grey tab, a sad face, the reason.
pub fn sad_tab(fonts: &Fonts, page: &str, reason: &str) -> Pixmap {
    let (w, h) = (800u32, 600u32);
    let mut p = Pixmap::new(w, h).expect("non-zero size");
    rect(&mut p, 0.0, 0.0, w as f32, h as f32, rgb(0xeef0f3));
    rect(&mut p, 0.0, 0.0, w as f32, 56.0, rgb(0x5f6368));
    text(&mut p, &fonts.text, 24.0, 20.0, 37.0, page, rgb(0xffffff));
    text(
        &mut p,
        &fonts.text,
        120.0,
        330.0,
        250.0,
        ":(",
        rgb(0x5f6368),
    );
    text(
        &mut p,
        &fonts.text,
        30.0,
        200.0,
        330.0,
        "Aw, snap! This page was stopped.",
        rgb(0x202124),
    );
    let mut y = 390.0;
    for line in wrap(&fonts.mono, 18.0, reason, 700.0) {
        text(&mut p, &fonts.mono, 18.0, 50.0, y, &line, rgb(0xb3261e));
        y += 26.0;
    }
    p
}

/// One cell of the overview: a page's picture (or none) and its label.
pub struct Cell<'a> {
    pub picture: Option<&'a Pixmap>,
    pub title: String,
    pub outcome: String,
    pub good: bool,
}

/// Every page at a glance: a grid of thumbnails, each under its title and over its
/// outcome (green when it is what the demo expects of that page, red otherwise).
pub fn overview(fonts: &Fonts, cells: &[Cell<'_>]) -> Pixmap {
    let (cols, tw, th, pad) = (4usize, 300.0f32, 380.0f32, 20.0f32);
    let rows = cells.len().div_ceil(cols).max(1);
    let cw = tw + pad;
    let ch = th + 70.0 + pad;
    let (w, h) = (cols as f32 * cw + pad, rows as f32 * ch + 80.0);
    let mut p = Pixmap::new(w as u32, h as u32).expect("non-zero size");
    rect(&mut p, 0.0, 0.0, w, h, rgb(0x202124));
    text(
        &mut p,
        &fonts.text,
        30.0,
        pad,
        48.0,
        "Sandboxed browser: one renderer per site",
        rgb(0xffffff),
    );
    for (i, cell) in cells.iter().enumerate() {
        let x = pad + (i % cols) as f32 * cw;
        let y = 80.0 + (i / cols) as f32 * ch;
        text(
            &mut p,
            &fonts.text,
            18.0,
            x,
            y + 16.0,
            &cell.title,
            rgb(0xe8eaed),
        );
        rect(&mut p, x, y + 24.0, tw, th, rgb(0x3c4043));
        if let Some(src) = cell.picture {
            let scale = (tw / src.width() as f32).min(th / src.height() as f32);
            let (sw, sh) = (src.width() as f32 * scale, src.height() as f32 * scale);
            picture(&mut p, src, x, y + 24.0, sw, sh);
        }
        let color = if cell.good {
            rgb(0x81c995)
        } else {
            rgb(0xf28b82)
        };
        let label: String = cell.outcome.chars().take(40).collect();
        text(&mut p, &fonts.text, 16.0, x, y + th + 46.0, &label, color);
    }
    p
}

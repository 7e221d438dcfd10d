//! The composite picture's layout, as pure functions: `n` tiles in a grid of near-square shape,
//! and each video fitted into its tile with its aspect kept (letterboxed, centred).

/// A rectangle in the composite picture, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// Columns and rows for `n` tiles: as many columns as the square root (rounded up), and the
/// rows they need. 0 tiles: an empty grid.
pub fn shape(n: usize) -> (usize, usize) {
    if n == 0 {
        return (0, 0);
    }
    let mut cols = 1;
    while cols * cols < n {
        cols += 1;
    }
    (cols, n.div_ceil(cols))
}

/// The `n` tiles of a `width` x `height` picture, row by row. Every tile has the same size; a
/// last row that is not full is centred.
pub fn tiles(n: usize, width: u32, height: u32) -> Vec<Rect> {
    let (cols, rows) = shape(n);
    if n == 0 {
        return Vec::new();
    }
    let (w, h) = (width as usize / cols, height as usize / rows);
    (0..n)
        .map(|i| {
            let (row, col) = (i / cols, i % cols);
            let in_row = if row == rows - 1 {
                n - row * cols
            } else {
                cols
            };
            // Centre a short last row.
            let left = (width as usize - in_row * w) / 2;
            Rect {
                x: (left + col * w) as i32,
                y: (row * h) as i32,
                width: w as i32,
                height: h as i32,
            }
        })
        .collect()
}

/// A `video_width` x `video_height` picture fitted into `tile` with its aspect kept, centred.
/// An unknown (zero) size fills the tile.
pub fn fit(tile: Rect, video_width: u32, video_height: u32) -> Rect {
    if video_width == 0 || video_height == 0 {
        return tile;
    }
    let (tw, th) = (tile.width as u64, tile.height as u64);
    let (vw, vh) = (video_width as u64, video_height as u64);
    // Whichever side limits: tw/vw < th/vh  <=>  tw*vh < th*vw.
    let (w, h) = if tw * vh <= th * vw {
        (tw, (vh * tw / vw).max(1))
    } else {
        ((vw * th / vh).max(1), th)
    };
    Rect {
        x: tile.x + ((tw - w) / 2) as i32,
        y: tile.y + ((th - h) / 2) as i32,
        width: w as i32,
        height: h as i32,
    }
}

/// The place of each video in a `width` x `height` picture: tile `i` holds video `i`, whose
/// size (0 x 0 while unknown) is `sizes[i]`.
pub fn layout(sizes: &[(u32, u32)], width: u32, height: u32) -> Vec<Rect> {
    tiles(sizes.len(), width, height)
        .into_iter()
        .zip(sizes)
        .map(|(tile, &(w, h))| fit(tile, w, h))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: i32, y: i32, width: i32, height: i32) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn shapes() {
        let got: Vec<_> = (0..=10).map(shape).collect();
        assert_eq!(
            got,
            [
                (0, 0),
                (1, 1),
                (2, 1),
                (2, 2),
                (2, 2),
                (3, 2),
                (3, 2),
                (3, 3),
                (3, 3),
                (3, 3),
                (4, 3)
            ]
        );
    }

    #[test]
    fn one_tile_is_the_whole_picture() {
        assert_eq!(tiles(1, 1280, 720), [r(0, 0, 1280, 720)]);
        assert!(tiles(0, 1280, 720).is_empty());
    }

    #[test]
    fn two_side_by_side_three_with_a_centred_last_row() {
        assert_eq!(
            tiles(2, 1280, 720),
            [r(0, 0, 640, 720), r(640, 0, 640, 720)]
        );
        assert_eq!(
            tiles(3, 1280, 720),
            [
                r(0, 0, 640, 360),
                r(640, 0, 640, 360),
                r(320, 360, 640, 360)
            ]
        );
        // 5 tiles: 3 + 2, the 2 centred.
        let t = tiles(5, 1200, 600);
        assert_eq!(t[3], r(200, 300, 400, 300));
        assert_eq!(t[4], r(600, 300, 400, 300));
    }

    #[test]
    fn tiles_stay_inside_and_do_not_overlap() {
        for n in 1..=17 {
            let t = tiles(n, 1280, 720);
            assert_eq!(t.len(), n);
            for (i, a) in t.iter().enumerate() {
                assert!(a.x >= 0 && a.y >= 0 && a.x + a.width <= 1280 && a.y + a.height <= 720);
                for b in &t[i + 1..] {
                    let apart = a.x + a.width <= b.x
                        || b.x + b.width <= a.x
                        || a.y + a.height <= b.y
                        || b.y + b.height <= a.y;
                    assert!(apart, "{n} tiles: {a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn fit_keeps_the_aspect_letterboxed() {
        // 4:3 in a 640x720 tile: full width, bars above and below.
        assert_eq!(fit(r(640, 0, 640, 720), 640, 480), r(640, 120, 640, 480));
        // 4:3 in a 1280x720 tile: full height, bars left and right.
        assert_eq!(fit(r(0, 0, 1280, 720), 640, 480), r(160, 0, 960, 720));
        // Same aspect: the whole tile.
        assert_eq!(fit(r(0, 0, 1280, 720), 320, 180), r(0, 0, 1280, 720));
        // Unknown size: the whole tile.
        assert_eq!(fit(r(5, 6, 7, 8), 0, 0), r(5, 6, 7, 8));
    }

    #[test]
    fn layout_fits_each_video_in_its_tile() {
        let l = layout(&[(640, 480), (0, 0)], 1280, 720);
        assert_eq!(l, [r(0, 120, 640, 480), r(640, 0, 640, 720)]);
    }
}

//! The segment parser must refuse, never panic on, any input; and whatever it accepts
//! must print to text that parses back to the same tree and compiles on both engines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailcast::segment::{SegmentError, compile, no_segments, parse};
use mailcast::store::Engine;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(text) else {
        return;
    };
    let printed = expr.to_string();
    assert_eq!(parse(&printed).ok().as_ref(), Some(&expr), "{printed}");
    for engine in [Engine::Sqlite, Engine::Postgres] {
        match compile(&expr, engine, 1_800_000_000, &no_segments) {
            // Without a store, references are unknown; huge inputs may be too large.
            Ok(_) | Err(SegmentError::UnknownSegment(_) | SegmentError::TooLarge(_)) => {}
            Err(e) => panic!("{text}: {e}"),
        }
    }
});

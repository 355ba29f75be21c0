//! Fuzz the replication wire codec (`shoal_storage::wire`): decoding arbitrary bytes never
//! panics, and every command a replica would accept passes the checked encoder a leader uses
//! before proposing, with an encoding that is stable from then on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_storage::wire::{decode_command, decode_outcome, encode_command, encode_command_checked};

fuzz_target!(|data: &[u8]| {
    let _ = decode_outcome(data);
    let Ok(cmd) = decode_command(data) else { return };
    let Ok(bytes) = encode_command_checked(&cmd) else {
        panic!("a decoded command is refused by the checked encoder");
    };
    let Ok(again) = decode_command(&bytes) else {
        panic!("a checked encoding does not decode");
    };
    let mut twice = Vec::new();
    encode_command(&again, &mut twice);
    assert!(twice == bytes, "the encoding is not stable");
});

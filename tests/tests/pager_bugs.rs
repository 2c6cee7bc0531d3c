//! Regression tests for pager bugs the model kernel found.

#![forbid(unsafe_code)]

use pager::{Access, FaultClass, FrameCounts, Rights};
use pager_tests::reference::*;
use pager_tests::{default_session, reference_boot_image, REFERENCE_FILE};

const PAGE: u64 = 4096;

/// Sharing an area into the same client below it shifted the area list, so the pager marked the wrong
/// area shared and left the real source private.
#[test]
fn sharing_an_area_into_its_own_client_below_it_shares_the_right_area() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let image = session.image(REFERENCE_FILE);
    let client = session.spawn(image, None).unwrap();
    session.write(client, 0x0080_1000, b"one").unwrap();
    // 0x100000 lies below every segment: the new area goes first in the list.
    session.share(client, DATA, client, 0x0010_0000).unwrap();
    assert_eq!(session.read(client, 0x0010_1000, 3).unwrap(), b"one");
    session.write(client, 0x0010_3000, b"two").unwrap();
    let touched = session.touch(client, 0x0080_3000, Access::Read).unwrap();
    assert_eq!(touched.fault.unwrap().class, FaultClass::SharedHit);
    assert_eq!(session.read(client, 0x0080_3000, 3).unwrap(), b"two");
    // The text area, just below DATA in the list, must not have become shared.
    let areas = session.pager.client(client).unwrap().areas();
    let text = areas.iter().find(|a| a.base() == TEXT).unwrap();
    assert_eq!(text.shared(), None);
    session.remove_client(client).unwrap();
    assert_eq!(session.pager.frame_counts().in_use, 0);
    assert_eq!(session.kernel.violations(), &[]);
}

/// A frame outliving its creator in a shared area was still charged to the creator's id: when a new
/// client reused that id, the frame's release was taken off the newcomer's count (which underflowed).
#[test]
fn frames_outliving_their_creator_are_not_charged_to_a_newcomer_with_its_id() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let image = session.image(REFERENCE_FILE);
    let creator = session.spawn(image, None).unwrap();
    let sharer = session.spawn(image, None).unwrap();
    let region = 0x4000_0000;
    session
        .shared_region(PAGE, &[(creator, region, Rights::READ_WRITE), (sharer, region, Rights::READ_WRITE)])
        .unwrap();
    session.write(creator, region, b"outlives").unwrap();
    session.remove_client(creator).unwrap();

    let newcomer = session.spawn(image, Some(1)).unwrap();
    assert_eq!(newcomer, creator, "the pager reuses the free id");
    session.write(newcomer, SMALL, b"n").unwrap();
    assert_eq!(session.pager.client(newcomer).unwrap().frames_charged(), 1);
    session.remove_client(sharer).unwrap();
    assert_eq!(session.pager.client(newcomer).unwrap().frames_charged(), 1);
    session.remove_client(newcomer).unwrap();
    assert_eq!(
        session.pager.frame_counts(),
        FrameCounts { created: 32, in_use: 0, free: 32, capacity: 4096, pinned: 0 }
    );
    assert_eq!(session.kernel.violations(), &[]);
}

//! A test plugin that claims the next plugin ABI version. The host must refuse it after reading
//! its tag; its entry point aborts the process, so a host that called it would fail the test.

use poolgate_plugin_api::contract::{PluginApi, PluginTag, ABI_VERSION};

/// The current tag with the ABI version one ahead.
#[no_mangle]
#[used]
pub static POOLGATE_PLUGIN_TAG: PluginTag = PluginTag {
    abi_version: ABI_VERSION + 1,
    ..PluginTag::CURRENT
};

/// Never to be called: the version check comes first.
#[no_mangle]
pub extern "C" fn poolgate_plugin_entry() -> *const PluginApi {
    eprintln!(
        "test-bad-version: the host called the entry point of a plugin with another ABI version"
    );
    std::process::abort()
}

//! The UniFFI binding generator, built from the same UniFFI version as `mobile-bridge`, so the
//! generated Kotlin, Swift and Python match the scaffolding in the library
//! (`scripts/bindings.sh` runs it in library mode).

fn main() {
    uniffi::uniffi_bindgen_main()
}

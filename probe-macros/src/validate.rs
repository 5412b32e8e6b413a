//! Checks with spanned errors: the appkey's form and the shape of the impl.

use crate::parse::ServiceInput;

/// `^\w+$` as the registry requires (Python `re` semantics for `str`).
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

pub(crate) fn validate(input: &ServiceInput) -> syn::Result<()> {
    let appkey = input.appkey.value();
    if !is_word(&appkey) {
        return Err(syn::Error::new_spanned(
            &input.appkey,
            format!("invalid appkey {appkey:?}: use only letters, digits and underscores (^\\w+$)"),
        ));
    }
    if input.item.trait_.is_none() {
        return Err(syn::Error::new_spanned(
            &input.item.self_ty,
            "#[probe::service] goes on `impl GeneratedServiceTrait for YourHandler`",
        ));
    }
    Ok(())
}

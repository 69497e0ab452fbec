//! Identity: who a person is and how they prove it, with no HTTP and no store.
//!
//! - [`person`]: the insured-person registry entry ([`InsuredPerson`], [`NhiCard`]) and masks.
//! - [`registration`]: intent registration (意願登記), its form, serial and history.
//! - [`captcha`]: stateless challenges any instance can check; single use is the store's.
//! - [`password`]: argon2id card passwords. [`otp`]: the NHI app's TOTP codes.
//! - [`login`]: failure counting, throttling and lockout.
//! - [`partner`]: kiosk partners and their keys.
//! - [`population`]: a synthetic national population for demos, drills and benchmarks.

pub mod captcha;
pub mod login;
pub mod otp;
pub mod partner;
pub mod password;
pub mod person;
pub mod population;
pub mod registration;

pub use person::{InsuredPerson, NhiCard, NhiCardError, mask_id, mask_mobile};
pub use registration::{
    BRANDS, FormError, RawForm, RegisterOutcome, Registration, RegistrationEvent, RegistrationForm,
    RegistrationStatus,
};

//! Check-in at a site: staff scan a booking code or type an ID number, and the booking
//! becomes `attended`, only at its site and on its date.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use hyper::body::Body;
use serde::Deserialize;
use time::{Date, OffsetDateTime};

use super::booking::view_value;
use super::problem::{Code, Problem};
use super::request::{HttpResponse, authenticate, parse_id_number, read_json, respond};
use crate::app::App;
use crate::catalog::Catalog;
use crate::domain::{Booking, BookingStatus, TAIWAN};
use crate::metrics as m;
use crate::store::{AttendOutcome, Store};
use crate::token::Scope;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckInRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    id_number: Option<String>,
}

/// Where a booking stands against this site and day.
fn fit(catalog: &Catalog, b: &Booking, site: &str, today: Date) -> Result<(), Code> {
    let slot = catalog.slot_index(b.slot.as_str()).map(|s| catalog.slot(s));
    let Some(slot) = slot else {
        return Err(Code::UnknownBooking);
    };
    if catalog.site(slot.site).id.as_str() != site {
        Err(Code::WrongSite)
    } else if b.status == BookingStatus::Cancelled {
        Err(Code::BookingCancelled)
    } else if slot.date != today {
        Err(Code::WrongDate)
    } else {
        Ok(())
    }
}

fn refusal(code: Code, catalog: &Catalog, b: Option<&Booking>) -> Problem {
    let detail = match code {
        Code::WrongSite => "the booking is for another site",
        Code::WrongDate => "the booking is for another day",
        Code::BookingCancelled => "the booking was cancelled",
        _ => "no such booking",
    };
    let p = Problem::new(code, detail);
    // Staff of one site see the bookings of their own site only: a booking elsewhere is
    // not theirs to read.
    match b {
        Some(b) if matches!(code, Code::WrongDate | Code::BookingCancelled) => {
            p.with("booking", view_value(catalog, b))
        }
        _ => p,
    }
}

/// `POST /v1/sites/{site}/check-ins`
pub async fn create<S, B>(
    app: &App<S>,
    site: &str,
    headers: &HeaderMap,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let now = OffsetDateTime::now_utc();
    let claims = authenticate(app, headers, &[Scope::Staff], now.unix_timestamp())?;
    if claims.partner.as_deref() != Some(site) {
        return Err(Problem::new(
            Code::WrongScope,
            "this staff token is for another site",
        ));
    }
    let req: CheckInRequest = read_json(app, body).await?;
    let catalog = app.store.catalog();
    let today = now.to_offset(TAIWAN).date();
    let booking = match (req.code, req.id_number) {
        (Some(code), None) => app
            .store
            .booking_by_code(code.trim())
            .await?
            .ok_or_else(|| refusal(Code::UnknownBooking, &catalog, None))?,
        (None, Some(raw)) => {
            let person = parse_id_number(&raw)?;
            let mine = app.store.bookings_of(person).await?;
            // The booking for here and today if there is one; else the most telling
            // refusal: a live booking elsewhere or on another day before a cancelled one.
            let rank = |b: &Booking| match fit(&catalog, b, site, today) {
                Ok(()) => 0,
                Err(Code::WrongDate) => 1,
                Err(Code::WrongSite) if b.status.is_live() => 2,
                Err(Code::BookingCancelled) => 3,
                Err(_) => 4,
            };
            mine.into_iter()
                .min_by_key(|b| (rank(b), std::cmp::Reverse(b.booked_at)))
                .ok_or_else(|| refusal(Code::UnknownBooking, &catalog, None))?
        }
        _ => {
            return Err(Problem::new(
                Code::InvalidRequest,
                "give exactly one of code and id_number",
            ));
        }
    };
    if let Err(code) = fit(&catalog, &booking, site, today) {
        metrics::counter!(m::CHECK_INS, "outcome" => "refused").increment(1);
        return Err(refusal(code, &catalog, Some(&booking)));
    }
    match app
        .store
        .attend(booking.person, booking.booking.clone())
        .await?
    {
        AttendOutcome::Attended(b) => {
            metrics::counter!(m::CHECK_INS, "outcome" => "attended").increment(1);
            Ok(respond(StatusCode::OK, &view_value(&catalog, &b)))
        }
        AttendOutcome::AlreadyAttended(b) => {
            metrics::counter!(m::CHECK_INS, "outcome" => "repeat").increment(1);
            Ok(respond(StatusCode::OK, &view_value(&catalog, &b)))
        }
        AttendOutcome::Cancelled(b) => Err(refusal(Code::BookingCancelled, &catalog, Some(&b))),
        AttendOutcome::UnknownBooking => Err(refusal(Code::UnknownBooking, &catalog, None)),
    }
}

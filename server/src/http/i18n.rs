//! Problem titles in the languages of the original guides: zh-TW (default), en, vi, id, th.

use super::problem::Code;

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhTw,
    En,
    Vi,
    Id,
    Th,
}

impl Lang {
    /// The BCP 47 tag for `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhTw => "zh-TW",
            Lang::En => "en",
            Lang::Vi => "vi",
            Lang::Id => "id",
            Lang::Th => "th",
        }
    }

    fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::ZhTw),
            "en" => Some(Lang::En),
            "vi" => Some(Lang::Vi),
            "id" | "in" => Some(Lang::Id),
            "th" => Some(Lang::Th),
            _ => None,
        }
    }

    /// The best supported language of an `Accept-Language` header, by q-value; zh-TW
    /// when none is supported.
    pub fn negotiate(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::ZhTw;
        };
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',').take(16) {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::from_tag(tag)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::ZhTw, |(_, l)| l)
    }
}

/// The title of a code in a language.
pub fn title(code: Code, lang: Lang) -> &'static str {
    let [zh, en, vi, id, th] = titles(code);
    match lang {
        Lang::ZhTw => zh,
        Lang::En => en,
        Lang::Vi => vi,
        Lang::Id => id,
        Lang::Th => th,
    }
}

fn titles(code: Code) -> [&'static str; 5] {
    match code {
        Code::SlotFull => [
            "此時段已額滿",
            "This slot is full",
            "Khung giờ này đã hết chỗ",
            "Slot ini sudah penuh",
            "ช่วงเวลานี้เต็มแล้ว",
        ],
        Code::AlreadyBooked => [
            "您在本期已有預約",
            "You already have a booking in this phase",
            "Bạn đã có lịch hẹn trong đợt này",
            "Anda sudah memiliki pemesanan pada tahap ini",
            "คุณมีการจองในรอบนี้แล้ว",
        ],
        Code::NotInvited => [
            "您不在本期預約名單中",
            "You are not invited to this phase",
            "Bạn không nằm trong danh sách được mời của đợt này",
            "Anda tidak diundang pada tahap ini",
            "คุณไม่ได้รับเชิญในรอบนี้",
        ],
        Code::NotAdmitted => [
            "請先在等候室排隊，輪到您時即可預約",
            "Wait in the waiting room: you can book when it is your turn",
            "Vui lòng chờ trong phòng chờ: bạn có thể đặt lịch khi đến lượt",
            "Tunggu di ruang tunggu: Anda dapat memesan saat giliran Anda tiba",
            "กรุณารอในห้องรอ คุณจะจองได้เมื่อถึงคิวของคุณ",
        ],
        Code::WindowClosed => [
            "本期預約已截止",
            "Booking for this phase has closed",
            "Đợt đặt lịch này đã kết thúc",
            "Pemesanan tahap ini sudah ditutup",
            "การจองรอบนี้ปิดแล้ว",
        ],
        Code::WindowNotOpen => [
            "本期預約尚未開放",
            "Booking for this phase has not opened yet",
            "Đợt đặt lịch này chưa mở",
            "Pemesanan tahap ini belum dibuka",
            "การจองรอบนี้ยังไม่เปิด",
        ],
        Code::UnknownSlot => [
            "查無此時段",
            "Unknown slot",
            "Không tìm thấy khung giờ",
            "Slot tidak dikenal",
            "ไม่พบช่วงเวลานี้",
        ],
        Code::UnknownPhase => [
            "查無此期別",
            "Unknown phase",
            "Không tìm thấy đợt",
            "Tahap tidak dikenal",
            "ไม่พบรอบนี้",
        ],
        Code::UnknownBooking => [
            "查無此預約",
            "Unknown booking",
            "Không tìm thấy lịch hẹn",
            "Pemesanan tidak dikenal",
            "ไม่พบการจองนี้",
        ],
        Code::WrongSite => [
            "此預約不在本接種站",
            "This booking is for another site",
            "Lịch hẹn này ở điểm tiêm khác",
            "Pemesanan ini untuk lokasi lain",
            "การจองนี้เป็นของจุดฉีดอื่น",
        ],
        Code::WrongDate => [
            "此預約不是今天",
            "This booking is for another day",
            "Lịch hẹn này vào ngày khác",
            "Pemesanan ini untuk hari lain",
            "การจองนี้เป็นของวันอื่น",
        ],
        Code::BookingCancelled => [
            "此預約已取消",
            "This booking was cancelled",
            "Lịch hẹn này đã bị hủy",
            "Pemesanan ini telah dibatalkan",
            "การจองนี้ถูกยกเลิกแล้ว",
        ],
        Code::BookingNotLive => [
            "此預約已取消",
            "This booking is no longer active",
            "Lịch hẹn này không còn hiệu lực",
            "Pemesanan ini tidak aktif lagi",
            "การจองนี้ไม่มีผลแล้ว",
        ],
        Code::InvalidRequest => [
            "請求格式錯誤",
            "Invalid request",
            "Yêu cầu không hợp lệ",
            "Permintaan tidak valid",
            "คำขอไม่ถูกต้อง",
        ],
        Code::IdempotencyKeyReused => [
            "重複使用的請求識別碼",
            "Idempotency key reused with another request",
            "Khóa yêu cầu đã được dùng cho yêu cầu khác",
            "Kunci idempotensi dipakai untuk permintaan lain",
            "คีย์คำขอถูกใช้กับคำขออื่นแล้ว",
        ],
        Code::Unauthenticated => [
            "請重新登入",
            "Authentication required",
            "Vui lòng đăng nhập lại",
            "Silakan masuk kembali",
            "กรุณาเข้าสู่ระบบใหม่",
        ],
        Code::WrongScope => [
            "此憑證無權執行此操作",
            "This token does not allow this operation",
            "Mã xác thực không cho phép thao tác này",
            "Token ini tidak mengizinkan operasi ini",
            "โทเค็นนี้ไม่อนุญาตการดำเนินการนี้",
        ],
        Code::RateLimited => [
            "操作過於頻繁，請稍後再試",
            "Too many requests; retry later",
            "Quá nhiều yêu cầu, vui lòng thử lại sau",
            "Terlalu banyak permintaan; coba lagi nanti",
            "คำขอมากเกินไป กรุณาลองใหม่ภายหลัง",
        ],
        Code::Overloaded => [
            "系統忙碌中，請稍後再試",
            "The service is busy; retry shortly",
            "Hệ thống đang bận, vui lòng thử lại",
            "Layanan sedang sibuk; coba lagi sebentar",
            "ระบบไม่ว่าง กรุณาลองใหม่อีกครั้ง",
        ],
        Code::StoreUnavailable => [
            "系統暫時無法預約，請稍後再試",
            "Booking is temporarily unavailable; retry shortly",
            "Tạm thời không thể đặt lịch, vui lòng thử lại",
            "Pemesanan sementara tidak tersedia; coba lagi",
            "ไม่สามารถจองได้ชั่วคราว กรุณาลองใหม่",
        ],
        Code::NotFound => [
            "查無此頁",
            "Not found",
            "Không tìm thấy",
            "Tidak ditemukan",
            "ไม่พบ",
        ],
        Code::MethodNotAllowed => [
            "不支援此操作",
            "Method not allowed",
            "Phương thức không được hỗ trợ",
            "Metode tidak diizinkan",
            "ไม่อนุญาตวิธีนี้",
        ],
        Code::PayloadTooLarge => [
            "資料過大",
            "Request body too large",
            "Dữ liệu quá lớn",
            "Isi permintaan terlalu besar",
            "ข้อมูลมีขนาดใหญ่เกินไป",
        ],
        Code::InvalidCalendar => [
            "日程資料有誤",
            "Invalid calendar",
            "Lịch không hợp lệ",
            "Kalender tidak valid",
            "ปฏิทินไม่ถูกต้อง",
        ],
        Code::Internal => [
            "系統錯誤",
            "Internal error",
            "Lỗi hệ thống",
            "Kesalahan internal",
            "ข้อผิดพลาดภายในระบบ",
        ],
        Code::IdentityMismatch => [
            "身分資料核對不符",
            "The identity details do not match",
            "Thông tin nhận dạng không khớp",
            "Data identitas tidak cocok",
            "ข้อมูลยืนยันตัวตนไม่ตรงกัน",
        ],
        Code::CaptchaFailed => [
            "驗證碼錯誤或已失效",
            "The captcha is wrong or has expired",
            "Mã xác nhận sai hoặc đã hết hạn",
            "Captcha salah atau sudah kedaluwarsa",
            "รหัสยืนยันไม่ถูกต้องหรือหมดอายุแล้ว",
        ],
        Code::AlreadyRegistered => [
            "您已完成意願登記",
            "You have already registered",
            "Bạn đã đăng ký nguyện vọng",
            "Anda sudah mendaftar",
            "คุณได้ลงทะเบียนแล้ว",
        ],
        Code::NotRegistered => [
            "您尚未完成意願登記",
            "You have not registered",
            "Bạn chưa đăng ký nguyện vọng",
            "Anda belum mendaftar",
            "คุณยังไม่ได้ลงทะเบียน",
        ],
        Code::VaccineNotChosen => [
            "您的意願登記未選擇此廠牌疫苗",
            "You did not choose this vaccine when you registered",
            "Bạn chưa chọn loại vắc-xin này khi đăng ký",
            "Anda tidak memilih vaksin ini saat mendaftar",
            "คุณไม่ได้เลือกวัคซีนนี้ตอนลงทะเบียน",
        ],
        Code::LoginFailed => [
            "登入失敗，請確認輸入資料",
            "Login failed; check what you entered",
            "Đăng nhập thất bại; hãy kiểm tra thông tin đã nhập",
            "Gagal masuk; periksa data yang Anda masukkan",
            "เข้าสู่ระบบไม่สำเร็จ กรุณาตรวจสอบข้อมูลที่กรอก",
        ],
        Code::RequestTimeout => [
            "請求內容傳送逾時",
            "The request body took too long to arrive",
            "Nội dung yêu cầu gửi đến quá chậm",
            "Isi permintaan terlalu lama diterima",
            "ส่งข้อมูลคำขอช้าเกินไป",
        ],
        Code::AccountLocked => [
            "登入失敗次數過多，請稍後再試",
            "Too many failed logins; try again later",
            "Đăng nhập sai quá nhiều lần; hãy thử lại sau",
            "Terlalu banyak percobaan masuk yang gagal; coba lagi nanti",
            "เข้าสู่ระบบผิดพลาดหลายครั้งเกินไป กรุณาลองใหม่ภายหลัง",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_by_quality_and_defaults_to_zh_tw() {
        assert_eq!(Lang::negotiate(None), Lang::ZhTw);
        assert_eq!(Lang::negotiate(Some("fr-FR")), Lang::ZhTw);
        assert_eq!(Lang::negotiate(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en;q=0.5, vi;q=0.8")), Lang::Vi);
        assert_eq!(Lang::negotiate(Some("th-TH")), Lang::Th);
        assert_eq!(Lang::negotiate(Some("id, en;q=0.1")), Lang::Id);
        assert_eq!(Lang::negotiate(Some("zh-Hant-TW,en;q=0.5")), Lang::ZhTw);
    }

    #[test]
    fn every_code_has_every_title() {
        for code in Code::ALL {
            for t in titles(code) {
                assert!(!t.is_empty(), "{code:?}");
            }
        }
        assert_eq!(title(Code::SlotFull, Lang::En), "This slot is full");
    }
}

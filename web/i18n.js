// Every string a person sees, in the five languages of the 2021 guides: zh-TW (the default),
// English, and Vietnamese, Indonesian and Thai for migrant workers. Each entry holds all five
// side by side, so a missing translation shows in review; tests/web/journey.py checks that
// every entry has every language and that every problem `code` of server/openapi.json has a
// message here.

export const LANGS = ['zh-TW', 'en', 'vi', 'id', 'th'];
export const DEFAULT_LANG = 'zh-TW';

/** Interface strings. `{name}` placeholders are filled by `t`. */
export const UI = {
  'app.title': {
    'zh-TW': 'COVID-19 疫苗接種預約', en: 'COVID-19 vaccination booking',
    vi: 'Đặt lịch tiêm vắc-xin COVID-19', id: 'Pemesanan vaksinasi COVID-19', th: 'จองคิวฉีดวัคซีนโควิด-19',
  },
  'skip': {
    'zh-TW': '跳至主要內容', en: 'Skip to main content', vi: 'Chuyển đến nội dung chính',
    id: 'Langsung ke konten utama', th: 'ข้ามไปยังเนื้อหาหลัก',
  },
  'lang.label': { 'zh-TW': '語言', en: 'Language', vi: 'Ngôn ngữ', id: 'Bahasa', th: 'ภาษา' },
  'nav.label': { 'zh-TW': '主選單', en: 'Main menu', vi: 'Menu chính', id: 'Menu utama', th: 'เมนูหลัก' },
  'nav.home': { 'zh-TW': '首頁', en: 'Home', vi: 'Trang chủ', id: 'Beranda', th: 'หน้าแรก' },
  'nav.register': {
    'zh-TW': '意願登記', en: 'Register intent', vi: 'Đăng ký nguyện vọng', id: 'Daftar minat',
    th: 'ลงทะเบียนความประสงค์',
  },
  'nav.book': { 'zh-TW': '預約接種', en: 'Book a slot', vi: 'Đặt lịch tiêm', id: 'Pesan jadwal', th: 'จองคิวฉีด' },
  'nav.me': { 'zh-TW': '我的預約', en: 'My bookings', vi: 'Lịch hẹn của tôi', id: 'Pesanan saya', th: 'การจองของฉัน' },
  'nav.login': { 'zh-TW': '登入', en: 'Log in', vi: 'Đăng nhập', id: 'Masuk', th: 'เข้าสู่ระบบ' },
  'nav.logout': { 'zh-TW': '登出', en: 'Log out', vi: 'Đăng xuất', id: 'Keluar', th: 'ออกจากระบบ' },
  'footer.help': {
    'zh-TW': '如需協助，請撥打防疫專線 1922。', en: 'Need help? Call the 1922 hotline.',
    vi: 'Cần hỗ trợ? Hãy gọi đường dây nóng 1922.', id: 'Butuh bantuan? Hubungi layanan 1922.',
    th: 'ต้องการความช่วยเหลือ โทรสายด่วน 1922',
  },

  'home.h': {
    'zh-TW': '疫苗接種預約', en: 'Vaccination booking', vi: 'Đặt lịch tiêm vắc-xin',
    id: 'Pemesanan vaksinasi', th: 'จองคิวฉีดวัคซีน',
  },
  'home.intro': {
    'zh-TW': '請依下列步驟完成：', en: 'Three steps:', vi: 'Ba bước:', id: 'Tiga langkah:', th: 'สามขั้นตอน:',
  },
  'home.step1.h': {
    'zh-TW': '意願登記', en: 'Register intent.', vi: 'Đăng ký nguyện vọng.', id: 'Daftar minat.',
    th: 'ลงทะเบียนความประสงค์',
  },
  'home.step1': {
    'zh-TW': '先登記意願，並選擇願意接種的疫苗廠牌。',
    en: 'Tell us you want a vaccine and which brands you accept.',
    vi: 'Cho chúng tôi biết bạn muốn tiêm và chấp nhận những hãng vắc-xin nào.',
    id: 'Beri tahu kami bahwa Anda ingin divaksin dan merek vaksin yang Anda terima.',
    th: 'แจ้งว่าคุณต้องการฉีดวัคซีนและยี่ห้อที่ยินดีรับ',
  },
  'home.step2.h': {
    'zh-TW': '預約時段', en: 'Book a slot.', vi: 'Đặt lịch.', id: 'Pesan jadwal.', th: 'จองคิว',
  },
  'home.step2': {
    'zh-TW': '收到開放預約的簡訊後，登入並預約接種時段。',
    en: 'When we text you that booking is open, log in and choose a time.',
    vi: 'Khi nhận được tin nhắn mở đặt lịch, hãy đăng nhập và chọn thời gian.',
    id: 'Saat kami mengirim SMS bahwa pemesanan dibuka, masuk dan pilih waktu.',
    th: 'เมื่อได้รับ SMS ว่าเปิดให้จองแล้ว ให้เข้าสู่ระบบและเลือกเวลา',
  },
  'home.step3.h': { 'zh-TW': '接種', en: 'Get vaccinated.', vi: 'Đi tiêm.', id: 'Divaksin.', th: 'ไปฉีดวัคซีน' },
  'home.step3': {
    'zh-TW': '依預約時間，帶健保卡到接種站。',
    en: 'Go to the site at your time with your NHI card.',
    vi: 'Đến điểm tiêm đúng giờ, mang theo thẻ bảo hiểm y tế NHI.',
    id: 'Datang ke lokasi sesuai waktu Anda dengan membawa kartu NHI.',
    th: 'ไปที่จุดฉีดตามเวลาที่จอง พร้อมบัตรประกันสุขภาพ NHI',
  },

  'common.back': { 'zh-TW': '返回', en: 'Back', vi: 'Quay lại', id: 'Kembali', th: 'ย้อนกลับ' },
  'common.yesCancel': {
    'zh-TW': '是，取消', en: 'Yes, cancel', vi: 'Có, hủy', id: 'Ya, batalkan', th: 'ใช่ ยกเลิก',
  },
  'common.noKeep': {
    'zh-TW': '不要取消', en: 'No, keep it', vi: 'Không, giữ lại', id: 'Tidak, simpan', th: 'ไม่ เก็บไว้',
  },
  'common.choose': { 'zh-TW': '請選擇', en: 'Choose…', vi: 'Chọn…', id: 'Pilih…', th: 'เลือก…' },

  'field.idNumber': {
    'zh-TW': '身分證號或居留證號', en: 'ID or resident certificate number',
    vi: 'Số CMND Đài Loan hoặc số thẻ cư trú (ARC)', id: 'Nomor KTP Taiwan atau ARC',
    th: 'เลขบัตรประชาชนไต้หวันหรือเลขบัตรถิ่นที่อยู่ (ARC)',
  },
  'field.nhiCard': {
    'zh-TW': '健保卡號', en: 'NHI card number', vi: 'Số thẻ bảo hiểm y tế NHI', id: 'Nomor kartu NHI',
    th: 'หมายเลขบัตรประกันสุขภาพ NHI',
  },
  'field.password': {
    'zh-TW': '健保卡密碼', en: 'NHI card password', vi: 'Mật khẩu thẻ NHI', id: 'Kata sandi kartu NHI',
    th: 'รหัสผ่านบัตร NHI',
  },
  'field.otp': {
    'zh-TW': 'App 驗證碼', en: 'App code', vi: 'Mã trên ứng dụng', id: 'Kode aplikasi', th: 'รหัสจากแอป',
  },
  'field.name': { 'zh-TW': '姓名', en: 'Full name', vi: 'Họ và tên', id: 'Nama lengkap', th: 'ชื่อ-นามสกุล' },
  'field.mobile': {
    'zh-TW': '手機號碼', en: 'Mobile number', vi: 'Số điện thoại di động', id: 'Nomor ponsel',
    th: 'หมายเลขโทรศัพท์มือถือ',
  },
  'field.county': {
    'zh-TW': '縣市', en: 'County or city', vi: 'Huyện/thành phố', id: 'Kabupaten/kota', th: 'จังหวัด/เมือง',
  },
  'field.district': {
    'zh-TW': '鄉鎮市區', en: 'District', vi: 'Quận/thị trấn', id: 'Distrik', th: 'เขต/ตำบล',
  },
  'field.vaccines': {
    'zh-TW': '願意接種的疫苗廠牌', en: 'Vaccine brands you accept',
    vi: 'Các hãng vắc-xin bạn đồng ý tiêm', id: 'Merek vaksin yang Anda terima',
    th: 'ยี่ห้อวัคซีนที่ยินดีรับ',
  },
  'field.phase': { 'zh-TW': '期別', en: 'Phase', vi: 'Đợt', id: 'Tahap', th: 'ระยะ' },
  'field.date': {
    'zh-TW': '接種日期', en: 'Vaccination date', vi: 'Ngày tiêm', id: 'Tanggal vaksinasi', th: 'วันที่ฉีด',
  },

  'hint.idNumber': {
    'zh-TW': '10 碼，例如 A123456789', en: '10 characters, e.g. A123456789',
    vi: '10 ký tự, ví dụ A123456789', id: '10 karakter, mis. A123456789', th: '10 ตัว เช่น A123456789',
  },
  'hint.nhiCard': {
    'zh-TW': '健保卡正面的 12 位數字', en: 'The 12 digits on the front of the card',
    vi: '12 chữ số ở mặt trước của thẻ', id: '12 digit di bagian depan kartu',
    th: 'ตัวเลข 12 หลักด้านหน้าบัตร',
  },
  'hint.otp': {
    'zh-TW': '健保快易通 App 顯示的 6 位數字', en: 'The 6 digits shown in the NHI app',
    vi: '6 chữ số hiển thị trong ứng dụng NHI', id: '6 digit yang tampil di aplikasi NHI',
    th: 'ตัวเลข 6 หลักที่แสดงในแอป NHI',
  },
  'hint.mobile': {
    'zh-TW': '09 開頭共 10 碼，用於接收預約通知簡訊',
    en: '10 digits starting with 09; we text you when you can book',
    vi: '10 chữ số bắt đầu bằng 09; chúng tôi sẽ nhắn tin khi bạn có thể đặt lịch',
    id: '10 digit diawali 09; kami kirim SMS saat Anda bisa memesan',
    th: '10 หลัก ขึ้นต้นด้วย 09 เราจะส่ง SMS เมื่อจองได้',
  },

  'invalid.required': {
    'zh-TW': '此欄位必填。', en: 'This is required.', vi: 'Vui lòng điền mục này.',
    id: 'Wajib diisi.', th: 'กรุณากรอกช่องนี้',
  },
  'invalid.idNumber': {
    'zh-TW': '請輸入 10 碼證號，例如 A123456789。', en: 'Enter the 10 characters, e.g. A123456789.',
    vi: 'Nhập đủ 10 ký tự, ví dụ A123456789.', id: 'Masukkan 10 karakter, mis. A123456789.',
    th: 'กรอก 10 ตัว เช่น A123456789',
  },
  'invalid.nhiCard': {
    'zh-TW': '請輸入 12 位數字。', en: 'Enter the 12 digits.', vi: 'Nhập đủ 12 chữ số.',
    id: 'Masukkan 12 digit.', th: 'กรอกตัวเลข 12 หลัก',
  },
  'invalid.otp': {
    'zh-TW': '請輸入 6 位數字。', en: 'Enter the 6 digits.', vi: 'Nhập đủ 6 chữ số.',
    id: 'Masukkan 6 digit.', th: 'กรอกตัวเลข 6 หลัก',
  },
  'invalid.mobile': {
    'zh-TW': '請輸入 09 開頭的 10 位數字。', en: 'Enter 10 digits starting with 09.',
    vi: 'Nhập 10 chữ số bắt đầu bằng 09.', id: 'Masukkan 10 digit diawali 09.',
    th: 'กรอกตัวเลข 10 หลัก ขึ้นต้นด้วย 09',
  },
  'invalid.captcha': {
    'zh-TW': '請輸入圖片中的字元。', en: 'Enter the characters in the picture.',
    vi: 'Nhập các ký tự trong hình.', id: 'Masukkan karakter pada gambar.', th: 'กรอกตัวอักษรในรูป',
  },
  'invalid.vaccines': {
    'zh-TW': '請至少選擇一種。', en: 'Choose at least one.', vi: 'Chọn ít nhất một loại.',
    id: 'Pilih setidaknya satu.', th: 'เลือกอย่างน้อยหนึ่งรายการ',
  },
  'invalid.name': {
    'zh-TW': '請輸入 1 到 50 個字。', en: 'Enter 1 to 50 characters.', vi: 'Nhập từ 1 đến 50 ký tự.',
    id: 'Masukkan 1 sampai 50 karakter.', th: 'กรอก 1 ถึง 50 ตัวอักษร',
  },

  'captcha.legend': {
    'zh-TW': '圖形驗證碼', en: 'Picture check', vi: 'Mã xác minh hình ảnh', id: 'Kode verifikasi gambar',
    th: 'รหัสยืนยันจากรูปภาพ',
  },
  'captcha.alt': {
    'zh-TW': '驗證碼圖片', en: 'Characters to type', vi: 'Hình các ký tự cần nhập',
    id: 'Gambar karakter yang harus diketik', th: 'รูปตัวอักษรที่ต้องพิมพ์',
  },
  'captcha.label': {
    'zh-TW': '請輸入圖片中的字元', en: 'Type the characters in the picture',
    vi: 'Nhập các ký tự trong hình', id: 'Ketik karakter pada gambar', th: 'พิมพ์ตัวอักษรในรูป',
  },
  'captcha.refresh': {
    'zh-TW': '換一張', en: 'New picture', vi: 'Đổi hình khác', id: 'Ganti gambar', th: 'เปลี่ยนรูป',
  },
  'captcha.renewed': {
    'zh-TW': '已換一張新的驗證碼圖片。', en: 'A new picture is shown.', vi: 'Đã hiển thị hình mới.',
    id: 'Gambar baru ditampilkan.', th: 'แสดงรูปใหม่แล้ว',
  },

  'reg.identify.h': {
    'zh-TW': '意願登記：身分驗證', en: 'Register intent: identify yourself',
    vi: 'Đăng ký nguyện vọng: xác minh danh tính', id: 'Daftar minat: verifikasi identitas',
    th: 'ลงทะเบียนความประสงค์: ยืนยันตัวตน',
  },
  'reg.identify.intro': {
    'zh-TW': '請輸入身分證號與健保卡號，以開始或查看您的意願登記。',
    en: 'Enter your ID number and NHI card number to register or to see your registration.',
    vi: 'Nhập số CMND và số thẻ NHI để đăng ký hoặc xem đăng ký của bạn.',
    id: 'Masukkan nomor identitas dan nomor kartu NHI untuk mendaftar atau melihat pendaftaran Anda.',
    th: 'กรอกเลขประจำตัวและหมายเลขบัตร NHI เพื่อลงทะเบียนหรือดูการลงทะเบียนของคุณ',
  },
  'reg.identify.submit': { 'zh-TW': '下一步', en: 'Continue', vi: 'Tiếp tục', id: 'Lanjut', th: 'ถัดไป' },
  'reg.form.h': {
    'zh-TW': '填寫登記資料', en: 'Your details', vi: 'Thông tin của bạn', id: 'Data Anda', th: 'ข้อมูลของคุณ',
  },
  'reg.form.mobileAgain': {
    'zh-TW': '為保護隱私，修改時請重新輸入手機號碼。',
    en: 'For your privacy, enter your mobile number again.',
    vi: 'Để bảo vệ quyền riêng tư, vui lòng nhập lại số điện thoại.',
    id: 'Demi privasi Anda, masukkan lagi nomor ponsel Anda.',
    th: 'เพื่อความเป็นส่วนตัว กรุณากรอกหมายเลขโทรศัพท์มือถืออีกครั้ง',
  },
  'reg.form.submitNew': {
    'zh-TW': '送出登記', en: 'Register', vi: 'Gửi đăng ký', id: 'Kirim pendaftaran', th: 'ส่งการลงทะเบียน',
  },
  'reg.form.submitEdit': {
    'zh-TW': '儲存修改', en: 'Save changes', vi: 'Lưu thay đổi', id: 'Simpan perubahan', th: 'บันทึกการแก้ไข',
  },
  'reg.done.h': {
    'zh-TW': '您的意願登記', en: 'Your registration', vi: 'Đăng ký của bạn', id: 'Pendaftaran Anda',
    th: 'การลงทะเบียนของคุณ',
  },
  'reg.serial': {
    'zh-TW': '登記序號', en: 'Registration number', vi: 'Số thứ tự đăng ký', id: 'Nomor pendaftaran',
    th: 'หมายเลขการลงทะเบียน',
  },
  'reg.place': { 'zh-TW': '居住地', en: 'Where you live', vi: 'Nơi ở', id: 'Tempat tinggal', th: 'ที่อยู่อาศัย' },
  'reg.registeredAt': {
    'zh-TW': '登記時間', en: 'Registered', vi: 'Thời gian đăng ký', id: 'Waktu pendaftaran', th: 'เวลาลงทะเบียน',
  },
  'reg.modifiedAt': {
    'zh-TW': '最後異動', en: 'Last changed', vi: 'Thay đổi lần cuối', id: 'Terakhir diubah', th: 'แก้ไขล่าสุด',
  },
  'reg.note': {
    'zh-TW': '開放預約時，我們會傳簡訊通知您。', en: 'We will text you when you can book.',
    vi: 'Chúng tôi sẽ nhắn tin khi bạn có thể đặt lịch.', id: 'Kami akan mengirim SMS saat Anda bisa memesan.',
    th: 'เราจะส่ง SMS แจ้งเมื่อคุณจองได้',
  },
  'reg.edit': {
    'zh-TW': '修改登記', en: 'Change registration', vi: 'Sửa đăng ký', id: 'Ubah pendaftaran',
    th: 'แก้ไขการลงทะเบียน',
  },
  'reg.cancel': {
    'zh-TW': '取消登記', en: 'Cancel registration', vi: 'Hủy đăng ký', id: 'Batalkan pendaftaran',
    th: 'ยกเลิกการลงทะเบียน',
  },
  'reg.cancelConfirm': {
    'zh-TW': '確定要取消意願登記嗎？之後重新登記會取得新的登記序號。',
    en: 'Cancel your registration? If you register again later, you get a new registration number.',
    vi: 'Hủy đăng ký của bạn? Nếu đăng ký lại sau này, bạn sẽ nhận số thứ tự mới.',
    id: 'Batalkan pendaftaran Anda? Jika mendaftar lagi nanti, Anda mendapat nomor pendaftaran baru.',
    th: 'ยกเลิกการลงทะเบียนหรือไม่ หากลงทะเบียนใหม่ภายหลังจะได้หมายเลขใหม่',
  },
  'reg.cancelled': {
    'zh-TW': '您的意願登記已取消。', en: 'Your registration is cancelled.', vi: 'Đăng ký của bạn đã bị hủy.',
    id: 'Pendaftaran Anda dibatalkan.', th: 'ยกเลิกการลงทะเบียนของคุณแล้ว',
  },
  'reg.again': { 'zh-TW': '重新登記', en: 'Register again', vi: 'Đăng ký lại', id: 'Daftar lagi', th: 'ลงทะเบียนใหม่' },
  'reg.created': {
    'zh-TW': '登記完成。', en: 'You are registered.', vi: 'Đăng ký thành công.', id: 'Pendaftaran berhasil.',
    th: 'ลงทะเบียนเรียบร้อยแล้ว',
  },
  'reg.saved': {
    'zh-TW': '已儲存修改。', en: 'Changes saved.', vi: 'Đã lưu thay đổi.', id: 'Perubahan disimpan.',
    th: 'บันทึกการแก้ไขแล้ว',
  },
  'reg.already': {
    'zh-TW': '您已完成意願登記，以下是您的登記資料。', en: 'You had already registered; here it is.',
    vi: 'Bạn đã đăng ký trước đó; thông tin như sau.', id: 'Anda sudah terdaftar; berikut datanya.',
    th: 'คุณลงทะเบียนไว้แล้ว ข้อมูลมีดังนี้',
  },

  'login.h': {
    'zh-TW': '登入預約', en: 'Log in to book', vi: 'Đăng nhập để đặt lịch', id: 'Masuk untuk memesan',
    th: 'เข้าสู่ระบบเพื่อจอง',
  },
  'login.method': {
    'zh-TW': '登入方式', en: 'How to log in', vi: 'Cách đăng nhập', id: 'Cara masuk', th: 'วิธีเข้าสู่ระบบ',
  },
  'login.card': {
    'zh-TW': '健保卡號與密碼', en: 'NHI card and password', vi: 'Thẻ NHI và mật khẩu',
    id: 'Kartu NHI dan kata sandi', th: 'บัตร NHI และรหัสผ่าน',
  },
  'login.app': {
    'zh-TW': '健保快易通 App 驗證碼', en: 'Code from the NHI app', vi: 'Mã từ ứng dụng NHI',
    id: 'Kode dari aplikasi NHI', th: 'รหัสจากแอป NHI',
  },
  'login.submit': { 'zh-TW': '登入', en: 'Log in', vi: 'Đăng nhập', id: 'Masuk', th: 'เข้าสู่ระบบ' },
  'login.ok': {
    'zh-TW': '已登入。', en: 'You are logged in.', vi: 'Bạn đã đăng nhập.', id: 'Anda sudah masuk.',
    th: 'เข้าสู่ระบบแล้ว',
  },
  'logout.ok': {
    'zh-TW': '已登出。', en: 'You are logged out.', vi: 'Bạn đã đăng xuất.', id: 'Anda sudah keluar.',
    th: 'ออกจากระบบแล้ว',
  },

  'book.h': {
    'zh-TW': '查詢可預約時段', en: 'Find a slot', vi: 'Tìm lịch tiêm còn trống', id: 'Cari jadwal',
    th: 'ค้นหาคิวว่าง',
  },
  'book.search': { 'zh-TW': '查詢', en: 'Search', vi: 'Tìm', id: 'Cari', th: 'ค้นหา' },
  'book.results': {
    'zh-TW': '可預約的接種站', en: 'Sites', vi: 'Các điểm tiêm', id: 'Lokasi vaksinasi', th: 'จุดฉีดวัคซีน',
  },
  'book.asOf': {
    'zh-TW': '名額統計於 {time}，僅供參考。', en: 'Seats as counted at {time}; they may have changed.',
    vi: 'Số chỗ tính lúc {time}; có thể đã thay đổi.', id: 'Jumlah kursi per {time}; mungkin sudah berubah.',
    th: 'จำนวนที่นั่ง ณ เวลา {time} อาจเปลี่ยนแปลงแล้ว',
  },
  'book.none': {
    'zh-TW': '這個日期與地區沒有時段，請換個日期或地區。',
    en: 'No slots on this date in this district. Try another date or district.',
    vi: 'Không có lịch vào ngày này tại khu vực này. Hãy chọn ngày hoặc khu vực khác.',
    id: 'Tidak ada jadwal pada tanggal dan distrik ini. Coba tanggal atau distrik lain.',
    th: 'ไม่มีคิวในวันและเขตนี้ ลองเลือกวันหรือเขตอื่น',
  },
  'book.remaining': {
    'zh-TW': '剩餘 {n} 名', en: '{n} left', vi: 'Còn {n} chỗ', id: 'Sisa {n}', th: 'เหลือ {n} ที่',
  },
  'book.period': { 'zh-TW': '時段', en: 'Time', vi: 'Khung giờ', id: 'Waktu', th: 'ช่วงเวลา' },
  'book.full': { 'zh-TW': '已額滿', en: 'Full', vi: 'Hết chỗ', id: 'Penuh', th: 'เต็มแล้ว' },
  'book.book': { 'zh-TW': '預約', en: 'Book', vi: 'Đặt lịch', id: 'Pesan', th: 'จอง' },
  'book.bookAria': {
    'zh-TW': '預約 {site} {date} {period} {vaccine}', en: 'Book {site}, {date}, {period}, {vaccine}',
    vi: 'Đặt lịch {site}, {date}, {period}, {vaccine}', id: 'Pesan {site}, {date}, {period}, {vaccine}',
    th: 'จอง {site} {date} {period} {vaccine}',
  },
  'book.changeTo': {
    'zh-TW': '改為此時段', en: 'Change to this', vi: 'Đổi sang lịch này', id: 'Ganti ke sini',
    th: 'เปลี่ยนเป็นคิวนี้',
  },
  'book.changeAria': {
    'zh-TW': '改為 {site} {date} {period} {vaccine}', en: 'Change to {site}, {date}, {period}, {vaccine}',
    vi: 'Đổi sang {site}, {date}, {period}, {vaccine}', id: 'Ganti ke {site}, {date}, {period}, {vaccine}',
    th: 'เปลี่ยนเป็น {site} {date} {period} {vaccine}',
  },
  'book.current': {
    'zh-TW': '目前的預約', en: 'Your booking', vi: 'Lịch hiện tại', id: 'Pesanan Anda', th: 'การจองปัจจุบัน',
  },
  'book.loginFirst': {
    'zh-TW': '預約前請先登入。', en: 'Log in before you book.', vi: 'Hãy đăng nhập trước khi đặt lịch.',
    id: 'Masuk dulu sebelum memesan.', th: 'กรุณาเข้าสู่ระบบก่อนจอง',
  },
  'book.changing': {
    'zh-TW': '正在更改預約（報到代碼 {code}）：請選擇新的時段。原預約會保留到新時段預約成功為止。',
    en: 'Changing booking {code}: choose a new slot. Your booking is kept until the new slot is yours.',
    vi: 'Đang đổi lịch {code}: chọn lịch mới. Lịch cũ được giữ cho đến khi đổi thành công.',
    id: 'Mengubah pesanan {code}: pilih jadwal baru. Pesanan lama tetap ada sampai jadwal baru berhasil.',
    th: 'กำลังเปลี่ยนการจอง {code}: เลือกคิวใหม่ การจองเดิมยังคงอยู่จนกว่าจะได้คิวใหม่',
  },
  'book.stopChanging': {
    'zh-TW': '不更改，回到我的預約', en: 'Keep it and go back to my bookings',
    vi: 'Giữ nguyên và quay lại lịch hẹn của tôi', id: 'Tetap dan kembali ke pesanan saya',
    th: 'ไม่เปลี่ยน กลับไปที่การจองของฉัน',
  },
  'book.booked': {
    'zh-TW': '預約成功。', en: 'Booked.', vi: 'Đặt lịch thành công.', id: 'Berhasil dipesan.', th: 'จองสำเร็จ',
  },
  'book.changed': {
    'zh-TW': '已更改預約。', en: 'Booking changed.', vi: 'Đã đổi lịch.', id: 'Pesanan diubah.',
    th: 'เปลี่ยนการจองแล้ว',
  },
  'book.seeExisting': {
    'zh-TW': '查看我的預約', en: 'See my booking', vi: 'Xem lịch hẹn của tôi', id: 'Lihat pesanan saya',
    th: 'ดูการจองของฉัน',
  },
  'book.window': {
    'zh-TW': '預約期間：{from} 至 {to}', en: 'Booking open from {from} to {to}',
    vi: 'Thời gian đặt lịch: {from} đến {to}', id: 'Pemesanan dibuka {from} sampai {to}',
    th: 'เปิดจอง {from} ถึง {to}',
  },
  'book.invitedOnly': {
    'zh-TW': '限受邀對象。', en: 'By invitation only.', vi: 'Chỉ dành cho người được mời.',
    id: 'Hanya untuk yang diundang.', th: 'เฉพาะผู้ได้รับเชิญ',
  },

  'queue.h': { 'zh-TW': '等候室', en: 'Waiting room', vi: 'Phòng chờ', id: 'Ruang tunggu', th: 'ห้องรอคิว' },
  'queue.pre': {
    'zh-TW': '您已在等候室。{time} 開放預約時，所有已在等候室的人會隨機排定順序，提早進來並不會排得比較前面。請保持這個頁面開啟。',
    en: 'You are in the waiting room. At {time}, when booking opens, everyone here gets a random place in the queue: arriving earlier does not help. Keep this page open.',
    vi: 'Bạn đang ở phòng chờ. Lúc {time}, khi mở đặt lịch, mọi người trong phòng chờ được xếp thứ tự ngẫu nhiên: đến sớm hơn không giúp được gì. Hãy giữ trang này mở.',
    id: 'Anda sudah di ruang tunggu. Pukul {time}, saat pemesanan dibuka, semua orang di sini mendapat urutan acak: datang lebih awal tidak membantu. Biarkan halaman ini tetap terbuka.',
    th: 'คุณอยู่ในห้องรอคิวแล้ว เวลา {time} เมื่อเปิดจอง ทุกคนในห้องรอคิวจะได้ลำดับแบบสุ่ม การเข้ามาก่อนไม่ได้ช่วยให้ได้คิวก่อน กรุณาเปิดหน้านี้ไว้',
  },
  'queue.waiting': {
    'zh-TW': '您排在第 {position} 位，前面還有 {ahead} 人。輪到您時，這裡會通知您。',
    en: 'You are number {position} in the queue; people ahead of you: {ahead}. We will tell you here when it is your turn.',
    vi: 'Bạn đang ở vị trí số {position}; số người phía trước: {ahead}. Chúng tôi sẽ báo ở đây khi đến lượt bạn.',
    id: 'Anda nomor {position} dalam antrean; orang di depan Anda: {ahead}. Kami akan memberi tahu di sini saat giliran Anda.',
    th: 'คุณอยู่ลำดับที่ {position} มีคนรอก่อนหน้าคุณ {ahead} คน เราจะแจ้งที่นี่เมื่อถึงคิวของคุณ',
  },
  'queue.turn': {
    'zh-TW': '輪到您了，請立即預約：在下方查詢並選擇時段。',
    en: "It's your turn — book now: search and choose a slot below.",
    vi: 'Đã đến lượt bạn — hãy đặt lịch ngay: tìm và chọn lịch bên dưới.',
    id: 'Sekarang giliran Anda — pesan sekarang: cari dan pilih jadwal di bawah.',
    th: 'ถึงคิวของคุณแล้ว จองได้เลย: ค้นหาและเลือกคิวด้านล่าง',
  },
  'queue.soldOut': {
    'zh-TW': '這一期的名額已全部預約完畢。之後的期別開放時，我們會再以簡訊邀請您。',
    en: 'No seats are left in this phase. We will invite you to a later phase by text message.',
    vi: 'Đợt này đã hết chỗ. Chúng tôi sẽ nhắn tin mời bạn vào một đợt sau.',
    id: 'Tidak ada kursi tersisa di tahap ini. Kami akan mengundang Anda ke tahap berikutnya lewat SMS.',
    th: 'ระยะนี้ไม่มีที่นั่งเหลือแล้ว เราจะส่ง SMS เชิญคุณในระยะถัดไป',
  },
  'queue.position': {
    'zh-TW': '您的順位', en: 'Your place', vi: 'Vị trí của bạn', id: 'Urutan Anda', th: 'ลำดับของคุณ',
  },
  'queue.positionLater': {
    'zh-TW': '{time} 開放時抽籤決定', en: 'Assigned at the opening, {time}', vi: 'Được xếp khi mở, lúc {time}',
    id: 'Ditentukan saat dibuka, pukul {time}', th: 'จับสลากตอนเปิด เวลา {time}',
  },
  'queue.ahead': {
    'zh-TW': '前面人數', en: 'Ahead of you', vi: 'Số người phía trước', id: 'Di depan Anda', th: 'จำนวนคนก่อนหน้า',
  },
  'queue.wait': {
    'zh-TW': '預估等候時間', en: 'Estimated wait', vi: 'Thời gian chờ dự kiến', id: 'Perkiraan waktu tunggu',
    th: 'เวลารอโดยประมาณ',
  },
  'queue.waitUnknown': {
    'zh-TW': '尚無法估計', en: 'Not known yet', vi: 'Chưa ước tính được', id: 'Belum diketahui', th: 'ยังประเมินไม่ได้',
  },
  'queue.waitSoon': {
    'zh-TW': '即將輪到您', en: 'Any moment now', vi: 'Sắp đến lượt bạn', id: 'Sebentar lagi', th: 'อีกไม่นาน',
  },
  'queue.seatsLeft': {
    'zh-TW': '本期剩餘名額', en: 'Seats left in this phase', vi: 'Số chỗ còn lại của đợt', id: 'Kursi tersisa di tahap ini',
    th: 'ที่นั่งที่เหลือในระยะนี้',
  },
  'queue.next': {
    'zh-TW': '{time}後更新', en: 'Next update in {time}', vi: 'Cập nhật sau {time}', id: 'Diperbarui dalam {time}',
    th: 'อัปเดตในอีก {time}',
  },
  'queue.updating': {
    'zh-TW': '更新中…', en: 'Updating…', vi: 'Đang cập nhật…', id: 'Memperbarui…', th: 'กำลังอัปเดต…',
  },
  'queue.buttonsLater': {
    'zh-TW': '輪到您時，「預約」按鈕就會啟用。', en: 'The Book buttons work once it is your turn.',
    vi: 'Các nút Đặt lịch sẽ dùng được khi đến lượt bạn.', id: 'Tombol Pesan aktif saat giliran Anda.',
    th: 'ปุ่มจองจะใช้ได้เมื่อถึงคิวของคุณ',
  },

  'phase.name': { 'zh-TW': '第 {id} 期', en: 'Phase {id}', vi: 'Đợt {id}', id: 'Tahap {id}', th: 'ระยะที่ {id}' },
  'phase.upcoming': {
    'zh-TW': '尚未開放', en: 'not open yet', vi: 'chưa mở', id: 'belum dibuka', th: 'ยังไม่เปิด',
  },
  'phase.open': { 'zh-TW': '開放預約中', en: 'open', vi: 'đang mở', id: 'dibuka', th: 'เปิดจอง' },
  'phase.closed': { 'zh-TW': '已截止', en: 'closed', vi: 'đã đóng', id: 'ditutup', th: 'ปิดแล้ว' },
  'phase.option': {
    'zh-TW': '{name}（{status}）', en: '{name} ({status})', vi: '{name} ({status})', id: '{name} ({status})',
    th: '{name} ({status})',
  },

  'me.h': { 'zh-TW': '我的預約', en: 'My bookings', vi: 'Lịch hẹn của tôi', id: 'Pesanan saya', th: 'การจองของฉัน' },
  'me.none': {
    'zh-TW': '目前沒有預約。', en: 'You have no bookings.', vi: 'Bạn chưa có lịch hẹn nào.',
    id: 'Anda belum punya pesanan.', th: 'คุณยังไม่มีการจอง',
  },
  'me.bookOne': {
    'zh-TW': '查詢可預約時段', en: 'Find a slot', vi: 'Tìm lịch tiêm', id: 'Cari jadwal', th: 'ค้นหาคิวว่าง',
  },
  'me.code': {
    'zh-TW': '報到代碼', en: 'Check-in code', vi: 'Mã check-in', id: 'Kode check-in', th: 'รหัสเช็กอิน',
  },
  'me.qrAlt': {
    'zh-TW': '報到代碼 {code} 的 QR Code', en: 'QR code of check-in code {code}',
    vi: 'Mã QR của mã check-in {code}', id: 'Kode QR untuk kode check-in {code}',
    th: 'คิวอาร์โค้ดของรหัสเช็กอิน {code}',
  },
  'me.showAtSite': {
    'zh-TW': '接種當天請出示報到代碼或 QR Code，並攜帶健保卡。',
    en: 'On the day, show this code or QR code and bring your NHI card.',
    vi: 'Vào ngày tiêm, hãy xuất trình mã hoặc mã QR này và mang theo thẻ NHI.',
    id: 'Pada hari vaksinasi, tunjukkan kode atau kode QR ini dan bawa kartu NHI.',
    th: 'ในวันฉีด ให้แสดงรหัสหรือคิวอาร์โค้ดนี้และนำบัตร NHI มาด้วย',
  },
  'me.site': { 'zh-TW': '接種地點', en: 'Site', vi: 'Điểm tiêm', id: 'Lokasi', th: 'จุดฉีด' },
  'me.when': { 'zh-TW': '時間', en: 'When', vi: 'Thời gian', id: 'Waktu', th: 'เวลา' },
  'me.vaccine': { 'zh-TW': '疫苗', en: 'Vaccine', vi: 'Vắc-xin', id: 'Vaksin', th: 'วัคซีน' },
  'me.status': { 'zh-TW': '狀態', en: 'Status', vi: 'Trạng thái', id: 'Status', th: 'สถานะ' },
  'me.bookedAt': {
    'zh-TW': '預約時間', en: 'Booked at', vi: 'Thời điểm đặt', id: 'Dipesan pada', th: 'เวลาที่จอง',
  },
  'me.change': {
    'zh-TW': '更改時段', en: 'Change slot', vi: 'Đổi lịch', id: 'Ubah jadwal', th: 'เปลี่ยนคิว',
  },
  'me.cancel': {
    'zh-TW': '取消預約', en: 'Cancel booking', vi: 'Hủy lịch hẹn', id: 'Batalkan pesanan', th: 'ยกเลิกการจอง',
  },
  'me.cancelConfirm': {
    'zh-TW': '確定要取消 {date} {period} 在 {site} 的預約嗎？名額會釋出給其他人。',
    en: 'Cancel your booking at {site} on {date}, {period}? The seat goes to someone else.',
    vi: 'Hủy lịch hẹn tại {site} ngày {date}, {period}? Chỗ sẽ được nhường cho người khác.',
    id: 'Batalkan pesanan di {site} pada {date}, {period}? Kursinya akan diberikan ke orang lain.',
    th: 'ยกเลิกการจองที่ {site} วันที่ {date} เวลา {period} หรือไม่ ที่นั่งจะถูกปล่อยให้ผู้อื่น',
  },
  'me.cancelled': {
    'zh-TW': '已取消預約。', en: 'Booking cancelled.', vi: 'Đã hủy lịch hẹn.', id: 'Pesanan dibatalkan.',
    th: 'ยกเลิกการจองแล้ว',
  },
  'me.past': {
    'zh-TW': '已取消或已結束的預約', en: 'Cancelled and past bookings', vi: 'Lịch đã hủy hoặc đã qua',
    id: 'Pesanan dibatalkan dan lampau', th: 'การจองที่ยกเลิกหรือผ่านไปแล้ว',
  },

  'status.booked': { 'zh-TW': '已預約', en: 'Booked', vi: 'Đã đặt', id: 'Dipesan', th: 'จองแล้ว' },
  'status.cancelled': { 'zh-TW': '已取消', en: 'Cancelled', vi: 'Đã hủy', id: 'Dibatalkan', th: 'ยกเลิกแล้ว' },
  'status.attended': {
    'zh-TW': '已報到', en: 'Checked in', vi: 'Đã check-in', id: 'Sudah check-in', th: 'เช็กอินแล้ว',
  },
  'status.no-show': { 'zh-TW': '未到', en: 'Missed', vi: 'Vắng mặt', id: 'Tidak hadir', th: 'ไม่มาตามนัด' },

  'retry.in': {
    'zh-TW': '請於 {time}後再試。', en: 'You can try again in {time}.', vi: 'Bạn có thể thử lại sau {time}.',
    id: 'Anda dapat mencoba lagi dalam {time}.', th: 'ลองอีกครั้งได้ในอีก {time}',
  },
  'retry.now': {
    'zh-TW': '現在可以再試一次。', en: 'You can try again now.', vi: 'Bây giờ bạn có thể thử lại.',
    id: 'Sekarang Anda dapat mencoba lagi.', th: 'ลองอีกครั้งได้แล้ว',
  },
  'retry.auto': {
    'zh-TW': '{time}後自動重試。', en: 'Trying again in {time}.', vi: 'Tự động thử lại sau {time}.',
    id: 'Mencoba lagi dalam {time}.', th: 'จะลองใหม่อัตโนมัติในอีก {time}',
  },
  'dur.s': { 'zh-TW': '{s} 秒', en: '{s} s', vi: '{s} giây', id: '{s} detik', th: '{s} วินาที' },
  'dur.ms': {
    'zh-TW': '{m} 分 {s} 秒', en: '{m} min {s} s', vi: '{m} phút {s} giây', id: '{m} menit {s} detik',
    th: '{m} นาที {s} วินาที',
  },
  'dur.hm': {
    'zh-TW': '{h} 小時 {m} 分', en: '{h} h {m} min', vi: '{h} giờ {m} phút', id: '{h} jam {m} menit',
    th: '{h} ชั่วโมง {m} นาที',
  },
  'dur.dh': {
    'zh-TW': '{d} 天 {h} 小時', en: '{d} days {h} h', vi: '{d} ngày {h} giờ', id: '{d} hari {h} jam',
    th: '{d} วัน {h} ชั่วโมง',
  },
};

/**
 * A human message for every problem `code` of the API (server/openapi.json, API.md), plus
 * the client's own: `network` (no answer) and `unknown` (a code this table lacks).
 */
export const PROBLEMS = {
  'slot-full': {
    'zh-TW': '這個時段剛剛額滿了，請選擇其他時段。', en: 'This slot has just filled up. Please choose another.',
    vi: 'Lịch này vừa hết chỗ. Vui lòng chọn lịch khác.', id: 'Jadwal ini baru saja penuh. Silakan pilih yang lain.',
    th: 'คิวนี้เพิ่งเต็ม กรุณาเลือกคิวอื่น',
  },
  'already-booked': {
    'zh-TW': '您在這一期已經有預約了，可以到「我的預約」更改時段。',
    en: 'You already have a booking in this phase. You can change its slot under My bookings.',
    vi: 'Bạn đã có lịch hẹn trong đợt này. Bạn có thể đổi lịch ở mục Lịch hẹn của tôi.',
    id: 'Anda sudah punya pesanan di tahap ini. Anda bisa mengubah jadwalnya di Pesanan saya.',
    th: 'คุณมีการจองในระยะนี้แล้ว เปลี่ยนคิวได้ที่ การจองของฉัน',
  },
  'not-invited': {
    'zh-TW': '您不在這一期的接種對象中，請留意簡訊通知。',
    en: 'You are not invited to this phase. Watch for our text message.',
    vi: 'Bạn không thuộc diện được mời trong đợt này. Hãy chờ tin nhắn của chúng tôi.',
    id: 'Anda tidak diundang pada tahap ini. Tunggu SMS dari kami.',
    th: 'คุณไม่ได้รับเชิญในระยะนี้ โปรดรอ SMS จากเรา',
  },
  'window-closed': {
    'zh-TW': '這一期的預約已經截止。', en: 'Booking for this phase has closed.',
    vi: 'Đợt này đã hết thời gian đặt lịch.', id: 'Pemesanan untuk tahap ini sudah ditutup.',
    th: 'ระยะนี้ปิดรับจองแล้ว',
  },
  'window-not-open': {
    'zh-TW': '這一期還沒開放預約。', en: 'Booking for this phase has not opened yet.',
    vi: 'Đợt này chưa mở đặt lịch.', id: 'Pemesanan untuk tahap ini belum dibuka.',
    th: 'ระยะนี้ยังไม่เปิดให้จอง',
  },
  'unknown-slot': {
    'zh-TW': '找不到這個時段，請重新查詢。', en: 'That slot no longer exists. Please search again.',
    vi: 'Không tìm thấy lịch này. Vui lòng tìm lại.', id: 'Jadwal itu tidak ditemukan. Silakan cari lagi.',
    th: 'ไม่พบคิวนี้ กรุณาค้นหาใหม่',
  },
  'unknown-phase': {
    'zh-TW': '找不到這一期，請重新整理頁面。', en: 'That phase does not exist. Please reload the page.',
    vi: 'Không tìm thấy đợt này. Vui lòng tải lại trang.', id: 'Tahap itu tidak ada. Silakan muat ulang halaman.',
    th: 'ไม่พบระยะนี้ กรุณาโหลดหน้าใหม่',
  },
  'unknown-booking': {
    'zh-TW': '找不到這筆預約，可能已經取消。', en: 'That booking was not found; it may have been cancelled.',
    vi: 'Không tìm thấy lịch hẹn này; có thể đã bị hủy.', id: 'Pesanan itu tidak ditemukan; mungkin sudah dibatalkan.',
    th: 'ไม่พบการจองนี้ อาจถูกยกเลิกไปแล้ว',
  },
  'booking-not-live': {
    'zh-TW': '這筆預約已取消或已完成，不能再更改。', en: 'This booking is cancelled or over, so it cannot be changed.',
    vi: 'Lịch hẹn này đã hủy hoặc đã kết thúc nên không thể thay đổi.',
    id: 'Pesanan ini sudah dibatalkan atau selesai, jadi tidak bisa diubah.',
    th: 'การจองนี้ถูกยกเลิกหรือสิ้นสุดแล้ว จึงเปลี่ยนไม่ได้',
  },
  'invalid-request': {
    'zh-TW': '有資料格式不正確，請檢查後再送出。', en: 'Something you entered is not valid. Please check and send again.',
    vi: 'Có thông tin không hợp lệ. Vui lòng kiểm tra và gửi lại.',
    id: 'Ada data yang tidak valid. Silakan periksa dan kirim lagi.',
    th: 'มีข้อมูลไม่ถูกต้อง กรุณาตรวจสอบแล้วส่งใหม่',
  },
  'idempotency-key-reused': {
    'zh-TW': '這個操作與先前的請求衝突，請重新操作一次。', en: 'This clashed with an earlier request. Please do it again.',
    vi: 'Thao tác này trùng với yêu cầu trước. Vui lòng thực hiện lại.',
    id: 'Ini bentrok dengan permintaan sebelumnya. Silakan ulangi.',
    th: 'คำขอนี้ซ้ำกับคำขอก่อนหน้า กรุณาทำใหม่อีกครั้ง',
  },
  'unauthenticated': {
    'zh-TW': '登入已失效，請重新登入。', en: 'Your session has ended. Please log in again.',
    vi: 'Phiên làm việc đã hết hạn. Vui lòng đăng nhập lại.', id: 'Sesi Anda telah berakhir. Silakan masuk lagi.',
    th: 'เซสชันหมดอายุแล้ว กรุณาเข้าสู่ระบบอีกครั้ง',
  },
  'wrong-scope': {
    'zh-TW': '目前的登入不能進行這個操作，請重新登入。', en: 'This login cannot do that. Please log in again.',
    vi: 'Phiên đăng nhập này không thể thực hiện thao tác đó. Vui lòng đăng nhập lại.',
    id: 'Sesi masuk ini tidak dapat melakukan itu. Silakan masuk lagi.',
    th: 'การเข้าสู่ระบบนี้ทำรายการนี้ไม่ได้ กรุณาเข้าสู่ระบบอีกครั้ง',
  },
  'rate-limited': {
    'zh-TW': '操作太頻繁了，請稍候。', en: 'Too many tries in a short time. Please wait.',
    vi: 'Bạn thao tác quá nhiều trong thời gian ngắn. Vui lòng chờ.',
    id: 'Terlalu banyak percobaan dalam waktu singkat. Harap tunggu.',
    th: 'ทำรายการบ่อยเกินไป กรุณารอสักครู่',
  },
  'overloaded': {
    'zh-TW': '目前使用人數眾多，請稍候。', en: 'Many people are booking right now. Please wait.',
    vi: 'Hiện có rất nhiều người đang đặt lịch. Vui lòng chờ.',
    id: 'Banyak orang sedang memesan saat ini. Harap tunggu.',
    th: 'ขณะนี้มีผู้ใช้จำนวนมาก กรุณารอสักครู่',
  },
  'store-unavailable': {
    'zh-TW': '系統暫時無法處理，請稍候。', en: 'The system is briefly unavailable. Please wait.',
    vi: 'Hệ thống tạm thời không khả dụng. Vui lòng chờ.', id: 'Sistem sedang tidak tersedia. Harap tunggu.',
    th: 'ระบบไม่พร้อมใช้งานชั่วคราว กรุณารอสักครู่',
  },
  'not-found': {
    'zh-TW': '找不到您要的資料。', en: 'Not found.', vi: 'Không tìm thấy.', id: 'Tidak ditemukan.', th: 'ไม่พบข้อมูล',
  },
  'method-not-allowed': {
    'zh-TW': '不支援這個操作。', en: 'This action is not supported.', vi: 'Thao tác này không được hỗ trợ.',
    id: 'Tindakan ini tidak didukung.', th: 'ไม่รองรับการทำรายการนี้',
  },
  'payload-too-large': {
    'zh-TW': '送出的資料太大。', en: 'What you sent is too large.', vi: 'Dữ liệu gửi đi quá lớn.',
    id: 'Data yang dikirim terlalu besar.', th: 'ข้อมูลที่ส่งมีขนาดใหญ่เกินไป',
  },
  'request-timeout': {
    'zh-TW': '傳送逾時，請再試一次。', en: 'Sending took too long. Please try again.',
    vi: 'Gửi quá lâu. Vui lòng thử lại.', id: 'Pengiriman terlalu lama. Silakan coba lagi.',
    th: 'ส่งข้อมูลนานเกินไป กรุณาลองอีกครั้ง',
  },
  'invalid-calendar': {
    'zh-TW': '接種時程資料有誤，請聯絡系統管理者。', en: 'The vaccination calendar is invalid. Please contact the operators.',
    vi: 'Lịch tiêm không hợp lệ. Vui lòng liên hệ quản trị viên.',
    id: 'Kalender vaksinasi tidak valid. Silakan hubungi pengelola.',
    th: 'ตารางการฉีดวัคซีนไม่ถูกต้อง กรุณาติดต่อผู้ดูแลระบบ',
  },
  'internal': {
    'zh-TW': '系統發生錯誤，請稍後再試。', en: 'Something went wrong on our side. Please try again later.',
    vi: 'Hệ thống gặp lỗi. Vui lòng thử lại sau.', id: 'Terjadi kesalahan pada sistem. Silakan coba lagi nanti.',
    th: 'ระบบเกิดข้อผิดพลาด กรุณาลองใหม่ภายหลัง',
  },
  'identity-mismatch': {
    'zh-TW': '身分證號與健保卡號不相符，請再確認。', en: 'The ID number and the NHI card number do not match. Please check both.',
    vi: 'Số CMND và số thẻ NHI không khớp. Vui lòng kiểm tra lại.',
    id: 'Nomor identitas dan nomor kartu NHI tidak cocok. Silakan periksa keduanya.',
    th: 'เลขประจำตัวและหมายเลขบัตร NHI ไม่ตรงกัน กรุณาตรวจสอบ',
  },
  'captcha-failed': {
    'zh-TW': '驗證碼錯誤或已過期，請輸入新圖片中的字元。',
    en: 'The picture check was wrong or too old. Type the characters in the new picture.',
    vi: 'Mã xác minh sai hoặc đã hết hạn. Hãy nhập các ký tự trong hình mới.',
    id: 'Kode verifikasi salah atau kedaluwarsa. Ketik karakter pada gambar baru.',
    th: 'รหัสยืนยันไม่ถูกต้องหรือหมดอายุ กรุณาพิมพ์ตัวอักษรในรูปใหม่',
  },
  'already-registered': {
    'zh-TW': '您已經完成意願登記了。', en: 'You have already registered.', vi: 'Bạn đã đăng ký rồi.',
    id: 'Anda sudah terdaftar.', th: 'คุณลงทะเบียนไว้แล้ว',
  },
  'not-registered': {
    'zh-TW': '您還沒有意願登記，請先登記。', en: 'You have not registered your intent yet. Please register first.',
    vi: 'Bạn chưa đăng ký nguyện vọng. Vui lòng đăng ký trước.',
    id: 'Anda belum mendaftarkan minat. Silakan daftar dulu.',
    th: 'คุณยังไม่ได้ลงทะเบียนความประสงค์ กรุณาลงทะเบียนก่อน',
  },
  'vaccine-not-chosen': {
    'zh-TW': '您登記時沒有選擇這個疫苗廠牌，請選擇其他時段或修改登記。',
    en: 'You did not choose this vaccine brand when you registered. Choose another slot or change your registration.',
    vi: 'Bạn đã không chọn hãng vắc-xin này khi đăng ký. Hãy chọn lịch khác hoặc sửa đăng ký.',
    id: 'Anda tidak memilih merek vaksin ini saat mendaftar. Pilih jadwal lain atau ubah pendaftaran.',
    th: 'คุณไม่ได้เลือกยี่ห้อวัคซีนนี้ตอนลงทะเบียน เลือกคิวอื่นหรือแก้ไขการลงทะเบียน',
  },
  'login-failed': {
    'zh-TW': '登入資料不正確，請再確認。', en: 'The login details are not correct. Please check them.',
    vi: 'Thông tin đăng nhập không đúng. Vui lòng kiểm tra lại.',
    id: 'Data masuk tidak benar. Silakan periksa kembali.', th: 'ข้อมูลเข้าสู่ระบบไม่ถูกต้อง กรุณาตรวจสอบ',
  },
  'account-locked': {
    'zh-TW': '登入失敗次數太多，請稍候再試。', en: 'Too many failed logins. Please wait before trying again.',
    vi: 'Đăng nhập sai quá nhiều lần. Vui lòng chờ trước khi thử lại.',
    id: 'Terlalu banyak gagal masuk. Harap tunggu sebelum mencoba lagi.',
    th: 'เข้าสู่ระบบผิดหลายครั้งเกินไป กรุณารอก่อนลองใหม่',
  },
  'wrong-site': {
    'zh-TW': '這筆預約是在其他接種站。', en: 'This booking is at another site.', vi: 'Lịch hẹn này ở điểm tiêm khác.',
    id: 'Pesanan ini di lokasi lain.', th: 'การจองนี้เป็นของจุดฉีดอื่น',
  },
  'wrong-date': {
    'zh-TW': '這筆預約不是今天。', en: 'This booking is for another day.', vi: 'Lịch hẹn này vào ngày khác.',
    id: 'Pesanan ini untuk hari lain.', th: 'การจองนี้เป็นของวันอื่น',
  },
  'booking-cancelled': {
    'zh-TW': '這筆預約已經取消。', en: 'This booking was cancelled.', vi: 'Lịch hẹn này đã bị hủy.',
    id: 'Pesanan ini sudah dibatalkan.', th: 'การจองนี้ถูกยกเลิกแล้ว',
  },
  'not-admitted': {
    'zh-TW': '還沒輪到您，請在等候室稍候。', en: 'It is not your turn yet. Please wait in the waiting room.',
    vi: 'Chưa đến lượt bạn. Vui lòng chờ trong phòng chờ.', id: 'Belum giliran Anda. Harap tunggu di ruang tunggu.',
    th: 'ยังไม่ถึงคิวของคุณ กรุณารอในห้องรอคิว',
  },
  'network': {
    'zh-TW': '無法連線，請檢查網路後再試。', en: 'Cannot connect. Check your connection and try again.',
    vi: 'Không kết nối được. Hãy kiểm tra mạng và thử lại.', id: 'Tidak dapat terhubung. Periksa koneksi lalu coba lagi.',
    th: 'เชื่อมต่อไม่ได้ กรุณาตรวจสอบอินเทอร์เน็ตแล้วลองใหม่',
  },
  'unknown': {
    'zh-TW': '發生錯誤（{code}），請稍後再試。', en: 'Something went wrong ({code}). Please try again later.',
    vi: 'Đã xảy ra lỗi ({code}). Vui lòng thử lại sau.', id: 'Terjadi kesalahan ({code}). Silakan coba lagi nanti.',
    th: 'เกิดข้อผิดพลาด ({code}) กรุณาลองใหม่ภายหลัง',
  },
};

let current = DEFAULT_LANG;

/** The language in use. */
export function lang() {
  return current;
}

/** Switches the language of `t`; unsupported tags fall back to the default. */
export function setLang(tag) {
  current = LANGS.includes(tag) ? tag : DEFAULT_LANG;
  return current;
}

function fill(text, vars) {
  return vars ? text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : text;
}

/** The interface string `key`, in the current language, with `{vars}` filled. */
export function t(key, vars) {
  const entry = UI[key];
  if (!entry) {
    // A bug, not a person's problem: shown as the key, and loud in the console (tests fail on it).
    console.error(`i18n: no string "${key}"`);
    return key;
  }
  return fill(entry[current] ?? entry[DEFAULT_LANG], vars);
}

/** The message for a problem `code`; codes this table lacks say so with the code. */
export function problemText(code) {
  const entry = PROBLEMS[code];
  if (!entry) return fill(PROBLEMS.unknown[current], { code });
  return entry[current] ?? entry[DEFAULT_LANG];
}

/** A wait of `seconds`, in words. */
export function duration(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return t('dur.s', { s });
  if (s < 3600) return t('dur.ms', { m: Math.floor(s / 60), s: s % 60 });
  if (s < 86400) return t('dur.hm', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  return t('dur.dh', { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
}

"""Every text receptionists and officials read, in Vietnamese (default) and English: one
catalogue for the console, the exports and the command line."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "title": {"vi": "Checkpoint — kiểm soát ra vào", "en": "Checkpoint — door log"},
    "today": {"vi": "Hôm nay", "en": "Today"},
    "with_app": {"vi": "Có ứng dụng", "en": "With app"},
    "no_app": {"vi": "Không phát hiện ứng dụng", "en": "No app detected"},
    "manual": {"vi": "Ghi tay", "en": "Manual"},
    "adoption": {"vi": "Tỷ lệ cài đặt", "en": "Adoption"},
    "feed": {"vi": "Lượt vào gần đây", "en": "Latest entries"},
    "time": {"vi": "Giờ", "en": "Time"},
    "kind": {"vi": "Loại", "en": "Kind"},
    "protocol": {"vi": "Ứng dụng", "en": "App"},
    "health": {"vi": "Tình trạng", "en": "Health"},
    "running": {"vi": "đang chạy", "en": "running"},
    "not_running": {"vi": "DỊCH VỤ KHÔNG CHẠY", "en": "DAEMON NOT RUNNING"},
    "status_unknown": {"vi": "KHÔNG RÕ TRẠNG THÁI", "en": "STATUS UNKNOWN"},
    "near": {"vi": "Điện thoại gần cửa", "en": "Phones near the door"},
    "simulated": {"vi": "mô phỏng", "en": "simulation"},
    "ok": {"vi": "tốt", "en": "ok"},
    "error": {"vi": "lỗi", "en": "error"},
    "low": {"vi": "sắp đầy", "en": "low"},
    "full": {"vi": "đầy", "en": "full"},
    "off": {"vi": "tắt", "en": "off"},
    "unsynchronised": {"vi": "chưa đồng bộ", "en": "not synchronised"},
    "starting": {"vi": "đang khởi động", "en": "starting"},
    "unknown": {"vi": "không rõ", "en": "unknown"},
    # The scanner supervisor's states (appliance/ble/health.py).
    "bluez-missing": {"vi": "bluetoothd không chạy", "en": "bluetoothd not running"},
    "bluez-unresponsive": {"vi": "bluetoothd không trả lời", "en": "bluetoothd not answering"},
    "adapter-missing": {"vi": "mất bộ thu Bluetooth", "en": "adapter missing"},
    "not-discovering": {"vi": "đang quét lại", "en": "restarting the scan"},
    "power-cycling": {"vi": "đang bật lại bộ thu", "en": "power-cycling the adapter"},
    "failed": {"vi": "không khôi phục được", "en": "did not recover"},
    "restarting": {"vi": "đang khởi động lại", "en": "restarting"},
    "offline": {"vi": "mất kết nối, sẽ thử lại", "en": "offline, will retry"},
    "unauthorised": {"vi": "máy chủ từ chối, cần đăng ký lại", "en": "refused: enroll again"},
    "tls": {"vi": "sai chứng chỉ máy chủ", "en": "server certificate not trusted"},
    "scanner": {"vi": "Bluetooth", "en": "Bluetooth"},
    "store": {"vi": "Cơ sở dữ liệu", "en": "Database"},
    "clock": {"vi": "Đồng hồ", "en": "Clock"},
    "disk": {"vi": "Bộ nhớ", "en": "Disk"},
    "sync": {"vi": "Đồng bộ", "en": "Sync"},
    "gpio": {"vi": "Đèn/còi", "en": "Lights"},
    "greet": {"vi": "Chào khách có ứng dụng", "en": "Greeting an app user"},
    "prompt": {"vi": "Nhắc khách cài Bluezone", "en": "Asking a visitor to install Bluezone"},
    "idle": {"vi": "Đang chờ", "en": "Waiting"},
    "empty": {"vi": "Chưa có lượt vào nào hôm nay", "en": "No entries yet today"},
    "quit": {"vi": "Ctrl+C để thoát", "en": "Ctrl+C to quit"},
    "beacon": {"vi": "Beacon", "en": "Beacon"},
    "stopped": {"vi": "không chạy", "en": "not running"},
    "token": {"vi": "Mã", "en": "Token"},
    "keys": {
        "vi": "n: ghi tay khách   m: tắt còi   q: thoát",
        "en": "n: record a visitor   m: mute   q: quit",
    },
    "muted_until": {"vi": "Đã tắt còi đến {time}", "en": "Buzzer muted until {time}"},
    "quiet_hours": {"vi": "Giờ yên lặng (còi tắt)", "en": "Quiet hours (buzzer off)"},
    "muted": {"vi": "Đã tắt còi", "en": "Buzzer muted"},
    "waiting_inbox": {"vi": "{n} lượt ghi tay chờ ghi", "en": "{n} manual entries waiting"},
    "more_alerts": {"vi": "… và {n} cảnh báo khác", "en": "… and {n} more alerts"},
    # Faults: what is wrong, and what to do about it.
    "fault_daemon": {
        "vi": "Dịch vụ không chạy: lượt vào không được ghi. Khởi động lại thiết bị hoặc báo CNTT.",
        "en": "The service is not running: entries are not recorded. Restart the unit or call IT.",
    },
    "fault_status_unreadable": {
        "vi": "Không đọc được trạng thái của dịch vụ: tài khoản này không có quyền đọc. Báo CNTT.",
        "en": "Cannot read the service's status: this account may not read it. Call IT.",
    },
    "fault_status_foreign": {
        "vi": "Tệp trạng thái ở đây là của một thiết bị khác nên không hiển thị. Báo CNTT.",
        "en": "The status file here belongs to another unit, so it is not shown. Call IT.",
    },
    "fault_scanner": {
        "vi": "Lỗi Bluetooth ({state}): đang tự khắc phục; nếu kéo dài, khởi động lại thiết bị.",
        "en": "Bluetooth fault ({state}): recovering by itself; if it lasts, restart the unit.",
    },
    "fault_store": {
        "vi": "Lỗi cơ sở dữ liệu: {message}. Báo bộ phận CNTT.",
        "en": "Database fault: {message}. Call IT.",
    },
    "fault_disk": {
        "vi": "Thẻ nhớ sắp đầy: báo bộ phận CNTT.",
        "en": "The SD card is nearly full: call IT.",
    },
    "fault_disk_full": {
        "vi": "Thẻ nhớ đã đầy: {n} mục đang được giữ tạm trong bộ nhớ, sẽ tự ghi khi có chỗ"
        " trống. Báo bộ phận CNTT.",
        "en": "The SD card is full: {n} records are held in memory and will be written once"
        " there is room. Call IT.",
    },
    "fault_disk_dropped": {
        "vi": "Thẻ nhớ đã đầy và bộ nhớ tạm cũng đã đầy: {dropped} mục đã bị mất, {n} mục"
        " đang được giữ. Báo ngay bộ phận CNTT.",
        "en": "The SD card is full and so is the memory holding records: {dropped} lost,"
        " {n} held. Call IT now.",
    },
    "fault_clock": {
        "vi": "Đồng hồ chưa đồng bộ: kiểm tra mạng; giờ của lượt vào được đánh dấu.",
        "en": "The clock is not synchronised: check the network; entries are flagged.",
    },
    "fault_clock_waiting": {
        "vi": "Đồng hồ chưa đồng bộ: kiểm tra mạng. Giờ của {n} lượt vào chưa chắc đúng,"
        " sẽ được chỉnh khi có mạng.",
        "en": "The clock is not synchronised: check the network. {n} entries have uncertain"
        " times, corrected once it is.",
    },
    "fault_gpio": {
        "vi": "Đèn/còi lỗi: kiểm tra dây nối; lượt vào vẫn được ghi.",
        "en": "Lights/buzzer fault: check the wiring; entries are still recorded.",
    },
    "fault_sync_auth": {
        "vi": "Máy chủ tỉnh từ chối thiết bị: cần đăng ký lại (checkpoint enroll).",
        "en": "The provincial server refuses this unit: enroll it again (checkpoint enroll).",
    },
    "fault_sync_tls": {
        "vi": "Sai chứng chỉ máy chủ tỉnh: báo bộ phận CNTT.",
        "en": "The provincial server's certificate is not trusted: call IT.",
    },
    "fault_sync_offline": {
        "vi": "Chưa gửi được về máy chủ tỉnh ({n} lượt chờ); dữ liệu vẫn an toàn trên máy.",
        "en": "Cannot reach the provincial server ({n} waiting); records are safe here.",
    },
    "fault_beacon": {
        "vi": "Beacon không phát: khởi động lại thiết bị nếu kéo dài.",
        "en": "The beacon is not advertising: restart the unit if it lasts.",
    },
    "alert_exposure": {
        "vi": "CẢNH BÁO Y TẾ: một ca bệnh đã qua cửa này lúc {when}. Làm theo hướng dẫn của"
        " cơ quan y tế.",
        "en": "HEALTH ALERT: a confirmed case came through this door at {when}. Follow the"
        " health authority's instructions.",
    },
    "alert_other": {
        "vi": "Thông báo từ máy chủ tỉnh: {kind}",
        "en": "Notice from the province: {kind}",
    },
    # The visitor form and log-visitor.
    "form_title": {
        "vi": "Ghi tay khách (Enter để bỏ qua mục không bắt buộc, Ctrl+C để huỷ)",
        "en": "Record a visitor (Enter skips an optional field, Ctrl+C cancels)",
    },
    "f_name": {"vi": "Họ và tên", "en": "Name"},
    "f_org": {"vi": "Cơ quan, đơn vị", "en": "Organisation"},
    "f_phone": {"vi": "Số điện thoại", "en": "Phone"},
    "f_purpose": {"vi": "Mục đích", "en": "Purpose"},
    "optional": {"vi": "không bắt buộc", "en": "optional"},
    "err_name_required": {"vi": "Cần nhập họ và tên.", "en": "A name is required."},
    "err_too_long": {"vi": "{field}: tối đa {n} ký tự.", "en": "{field}: at most {n} characters."},
    "err_control": {
        "vi": "{field}: có ký tự không hợp lệ.",
        "en": "{field}: contains characters that are not allowed.",
    },
    "err_phone": {
        "vi": "Số điện thoại phải có 8 đến 15 chữ số.",
        "en": "A phone number has 8 to 15 digits.",
    },
    "form_saved": {"vi": "Đã ghi tay một lượt khách.", "en": "Visitor recorded."},
    "form_queued": {
        "vi": "Đã lưu; sẽ được ghi khi dịch vụ chạy lại.",
        "en": "Saved; it will be recorded when the service runs again.",
    },
    "form_cancelled": {"vi": "Đã huỷ.", "en": "Cancelled."},
    "form_failed": {
        "vi": "KHÔNG lưu được ({error}): ghi ra giấy và báo bộ phận CNTT.",
        "en": "NOT saved ({error}): write it on paper and call IT.",
    },
    "fault_rejected": {
        "vi": "{n} lượt ghi tay không ghi được vào dữ liệu: báo bộ phận CNTT.",
        "en": "{n} manual entries could not be recorded: call IT.",
    },
    "muted_notice": {"vi": "Đã tắt còi {n} phút.", "en": "Buzzer muted for {n} minutes."},
    # `checkpoint log-visitor` when the visitor could not be written down at all.
    "err_card_full": {
        "vi": "Thẻ nhớ đã đầy: CHƯA ghi được khách. Ghi ra giấy và báo bộ phận CNTT.",
        "en": "The memory card is full: the visitor was NOT recorded. Write it on paper and"
        " call IT.",
    },
    "err_not_handed": {
        "vi": "CHƯA ghi được khách ({error}): ghi ra giấy và báo bộ phận CNTT.",
        "en": "The visitor was NOT recorded ({error}): write it on paper and call IT.",
    },
    # The console's account may not write the daemon's inbox (appliance.inbox.writer_problem).
    "fault_view_only": {
        "vi": "Màn hình chỉ xem: không gửi được yêu cầu cho dịch vụ. Ghi khách ra giấy; báo"
        " bộ phận CNTT: usermod -aG {group} {user}, rồi đăng nhập lại.",
        "en": "View-only screen: requests cannot reach the service. Write visitors on paper;"
        " call IT: usermod -aG {group} {user}, then log in again.",
    },
    "view_only_notice": {
        "vi": "Màn hình chỉ xem: không ghi tay và không tắt còi được ở đây. Ghi khách ra giấy.",
        "en": "View-only screen: visitors and mute cannot be recorded here. Use paper.",
    },
    # Exports and reports for officials (appliance/exports.py).
    "exp_entry": {"vi": "Mã lượt vào", "en": "Entry"},
    "exp_day": {"vi": "Ngày", "en": "Day"},
    "exp_entered": {"vi": "Giờ vào", "en": "Entered"},
    "exp_left": {"vi": "Giờ ra", "en": "Left"},
    "exp_kind": {"vi": "Loại", "en": "Kind"},
    "exp_protocol": {"vi": "Ứng dụng", "en": "App"},
    "exp_tokens": {"vi": "Mã ẩn danh (token)", "en": "Tokens"},
    "exp_name": {"vi": "Họ và tên", "en": "Name"},
    "exp_org": {"vi": "Cơ quan, đơn vị", "en": "Organisation"},
    "exp_phone": {"vi": "Số điện thoại", "en": "Phone"},
    "exp_purpose": {"vi": "Mục đích", "en": "Purpose"},
    "exp_clock": {"vi": "Đồng hồ đã đồng bộ", "en": "Clock synchronised"},
    "exp_total": {"vi": "Tổng", "en": "Total"},
    "yes": {"vi": "có", "en": "yes"},
    "no": {"vi": "không", "en": "no"},
    "xlsx_entries": {"vi": "Lượt vào", "en": "Entries"},
    "xlsx_summary": {"vi": "Tổng hợp theo ngày", "en": "Per day"},
    "xlsx_chart": {"vi": "Tỷ lệ cài đặt ứng dụng theo ngày", "en": "App adoption per day"},
    "report_title": {
        "vi": "Báo cáo lượt vào {agency}, {first} – {last}",
        "en": "Entries at {agency}, {first} – {last}",
    },
    "exported": {"vi": "Đã xuất {n} lượt vào: {target}", "en": "Exported {n} entries: {target}"},
    "left_out": {
        "vi": "{n} lượt mô phỏng hoặc phát lại không được xuất"
        " (--include-simulated thêm lượt mô phỏng)",
        "en": "{n} simulated or replayed entries not exported"
        " (--include-simulated adds the simulated ones)",
    },
}


def text(key: str, language: str) -> str:
    """The message in ``language`` (Vietnamese if missing); an unknown key shows as itself
    rather than taking the screen down."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(language) or entry["vi"]

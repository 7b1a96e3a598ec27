"""Every text the console shows, in Vietnamese (default) and English: one catalogue."""

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
    "near": {"vi": "Điện thoại gần cửa", "en": "Phones near the door"},
    "simulated": {"vi": "mô phỏng", "en": "simulation"},
    "ok": {"vi": "tốt", "en": "ok"},
    "error": {"vi": "lỗi", "en": "error"},
    "low": {"vi": "sắp đầy", "en": "low"},
    "off": {"vi": "tắt", "en": "off"},
    "unsynchronised": {"vi": "chưa đồng bộ", "en": "not synchronised"},
    "starting": {"vi": "đang khởi động", "en": "starting"},
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
}


def text(key: str, language: str) -> str:
    """The message in ``language`` (Vietnamese if missing); an unknown key shows as itself
    rather than taking the screen down."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(language) or entry["vi"]

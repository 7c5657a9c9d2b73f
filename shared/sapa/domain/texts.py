"""Every sentence a resident or an officer reads, in Bahasa Indonesia, kept in one place."""

from __future__ import annotations

ID: dict[str, str] = {
    # errors
    "illegal_transition": (
        "Tindakan '{event}' tidak dapat dilakukan oleh {actor} pada permohonan {case} "
        "yang berstatus '{state}'."
    ),
    "wrong_kecamatan": "Anda hanya dapat menangani permohonan dari kecamatan Anda ({kecamatan}).",
    "claimed_by_other": "Permohonan ini sedang ditangani oleh {who}.",
    "case_not_found": "Permohonan tidak ditemukan.",
    "nik_length": "NIK harus terdiri dari 16 angka.",
    "kk_length": "Nomor KK harus terdiri dari 16 angka.",
    "nik_region": "Kode wilayah pada NIK tidak valid.",
    "nik_birthdate": "Tanggal lahir pada NIK tidak valid.",
    "nik_serial": "Nomor urut pada NIK tidak boleh 0000.",
    "nik_birth_mismatch": "Tanggal lahir tidak sesuai dengan NIK.",
    "kk_serial": "Nomor urut pada Nomor KK tidak boleh 0000.",
    "kk_date": "Tanggal pada Nomor KK tidak valid.",
    "phone_invalid": "Nomor WhatsApp tidak valid. Contoh: 081234567890.",
    "required": "Wajib diisi.",
    "bad_json": "Permintaan tidak dapat dibaca (JSON tidak valid).",
    "bad_signature": "Tanda tangan permintaan tidak valid.",
    "service_unknown": "Jenis layanan tidak dikenal.",
    "service_required": "Pilih jenis layanan.",
    "file_type": "Berkas harus berupa JPG, PNG, atau PDF.",
    "file_too_large": "Ukuran berkas melebihi batas {limit_mb} MB.",
    "file_empty": "Berkas kosong.",
    "pdf_unreadable": "Berkas PDF rusak atau tidak dapat dibaca.",
    "image_unreadable": "Foto rusak atau tidak dapat dibaca. Silakan foto ulang dokumen Anda.",
    "image_too_big": "Resolusi foto terlalu besar. Silakan kirim foto dengan ukuran lebih kecil.",
    "document_missing": "Dokumen wajib belum diunggah: {name}.",
    "link_invalid": (
        'Tautan ini sudah tidak berlaku atau tidak valid. Silakan kirim pesan "HALO" '
        "ke nomor WhatsApp layanan kecamatan Anda untuk mendapatkan tautan baru."
    ),
    "not_logged_in": "Silakan masuk terlebih dahulu.",
    "csrf": "Sesi formulir sudah berakhir. Muat ulang halaman dan coba lagi.",
    "forbidden_role": "Peran Anda tidak berwenang untuk tindakan ini.",
    "internal": "Terjadi gangguan pada sistem. Silakan coba beberapa saat lagi.",
    "form_has_errors": "Periksa kembali isian yang ditandai.",
    "passphrase_required": "Passphrase TTE wajib diisi.",
    "assignee_invalid": "Pilih petugas yang memegang peran langkah ini.",
    "desa_unknown": "Pilih desa/kelurahan dari daftar kecamatan Anda.",
    "birth_in_future": "Tanggal lahir tidak boleh di masa depan.",
    "consent_required": "Persetujuan pemrosesan data wajib dicentang.",
    "correction_needed": "Mohon perbaiki bagian yang diminta petugas.",
    "siak_ref_required": "Nomor referensi SIAK wajib diisi.",
    "draft_required": "Konsep dokumen dari SIAK (PDF) wajib diunggah.",
    "rate_limited": (
        "Terlalu banyak permintaan dari alamat Anda. Silakan coba lagi dalam {seconds} detik."
    ),
    # messages to the resident on WhatsApp
    # the greeting with the guest-book link (SOP step 2): wa_greeting, then the service the
    # resident named with its documents (or how to choose one), the link, the keywords
    "wa_greeting": (
        "Selamat datang di layanan WhatsApp Disdukcapil Kabupaten Gowa, Kecamatan {kecamatan}.\n"
        "Nomor permohonan Anda: {reg_no}."
    ),
    "wa_greeting_service": (
        "Anda ingin mengurus *{service}*. Siapkan foto atau PDF dokumen berikut:\n{documents}\n"
        "Bila bukan layanan ini, pilih layanan yang benar di Buku Tamu."
    ),
    "wa_greeting_document": "- {name}",
    "wa_greeting_document_optional": "- {name} — tidak wajib",
    "wa_greeting_no_service": (
        "Di Buku Tamu, pilih jenis layanan yang Anda perlukan (misalnya KK, KTP-el, akta "
        "kelahiran), isi data Anda, lalu unggah foto atau PDF dokumen persyaratannya."
    ),
    "wa_greeting_link": (
        "Isi Buku Tamu dan unggah dokumen melalui tautan berikut (berlaku {days} hari):\n{link}"
    ),
    "wa_greeting_keywords": (
        "Ketik *STATUS* untuk melihat posisi permohonan, *BANTUAN* untuk bantuan, atau *BATAL* "
        "untuk membatalkan permohonan."
    ),
    "wa_form_received": (
        "Terima kasih. Data permohonan {reg_no} sudah kami terima dan sedang diperiksa "
        "oleh petugas loket."
    ),
    # staff see this in the conversation for a message recorded from its WhatsApp status
    "wa_recovered_body": "(Pesan ini terkirim; isinya tidak tercatat karena server terhenti.)",
    "wa_contacted": (
        "Permohonan {reg_no} sudah lengkap dan akan diteruskan untuk diproses. "
        "Kami akan mengabari Anda bila dokumen sudah selesai."
    ),
    "wa_correction": (
        "Permohonan {reg_no} perlu diperbaiki:\n{reason}\n"
        "Silakan perbaiki melalui tautan Buku Tamu Anda (hanya bagian di atas yang perlu "
        "diisi ulang):\n{link}"
    ),
    # the signed document's caption (services.signing.deliver): wa_delivered_caption, the
    # printing sentence for documents printed on plain paper, then the thanks
    "wa_delivered_caption": (
        "{document} Anda sudah selesai (permohonan {reg_no}).\n"
        "Dokumen ini sah dengan tanda tangan elektronik (TTE) Disdukcapil Kabupaten Gowa. "
        "Keasliannya dapat diperiksa dengan memindai kode QR pada dokumen."
    ),
    "wa_delivered_print": (
        "Sesuai Permendagri Nomor 109 Tahun 2019, dokumen ini dicetak pada kertas HVS putih "
        "A4 80 gram, tanpa blangko khusus: Anda dapat mencetaknya sendiri."
    ),
    "wa_delivered_thanks": "Terima kasih telah menggunakan layanan Disdukcapil Kabupaten Gowa.",
    # the satisfaction survey (services.survey): the invitation after the signed document
    # reached the resident, the answer to TANPA SURVEI, the survey page's own sentences
    "wa_survey_invite": (
        "Mohon bantu kami menilai layanan permohonan {reg_no} melalui survei kepuasan "
        "masyarakat: 9 pertanyaan singkat, kurang dari 1 menit, tanpa nama (berlaku {days} "
        "hari):\n{link}\nBila tidak ingin diminta mengisi survei lagi, balas *TANPA SURVEI*."
    ),
    "wa_survey_declined": (
        "Baik, kami tidak akan mengirimkan undangan survei lagi ke nomor ini. Terima kasih."
    ),
    "survey_link_invalid": (
        "Tautan survei ini sudah tidak berlaku atau tidak valid. Terima kasih atas perhatian Anda."
    ),
    "survey_already_answered": "Survei untuk permohonan ini sudah Anda isi. Terima kasih.",
    "survey_answer_required": "Pilih salah satu jawaban.",
    "survey_choice_unknown": "Pilihan tidak dikenal.",
    "survey_text_too_long": "Saran terlalu panjang (paling banyak {limit} karakter).",
    "survey_thanks": (
        "Terima kasih. Jawaban Anda sudah kami catat tanpa nama dan akan dipakai untuk "
        "memperbaiki layanan Disdukcapil Kabupaten Gowa."
    ),
    # complaints (services.complaints): ADUAN on WhatsApp, the heads' answer and closing
    "wa_complaint_ask": (
        "Silakan tuliskan aduan Anda tentang permohonan {reg_no} dalam satu pesan berikutnya."
    ),
    "wa_complaint_received": (
        "Aduan Anda tentang permohonan {reg_no} sudah kami terima (nomor aduan {complaint}). "
        "Kami akan menanggapinya paling lambat {due}."
    ),
    "wa_complaint_reply": "Tanggapan atas aduan Anda tentang permohonan {reg_no}:\n{reply}",
    "wa_complaint_closed": (
        "Aduan Anda tentang permohonan {reg_no} telah kami tutup: {outcome}. Bila Anda belum "
        "puas, Anda dapat menyampaikan pengaduan melalui SP4N-LAPOR! di www.lapor.go.id atau "
        "SMS ke 1708."
    ),
    "complaint_unknown": "Aduan tidak ditemukan pada permohonan ini.",
    "complaint_outcome_unknown": "Pilih hasil penanganan aduan.",
    "complaint_closed_already": "Aduan ini sudah ditutup.",
    "complaint_text_required": "Tuliskan isi aduan.",
    "wa_cancelled": "Permohonan {reg_no} telah dibatalkan.",
    "wa_cancel_confirm": (
        "Anda meminta pembatalan permohonan {reg_no}. Balas YA dalam {minutes} menit untuk "
        "membatalkan. Abaikan pesan ini bila tidak jadi membatalkan."
    ),
    "wa_cancel_declined": "Baik, permohonan {reg_no} tidak dibatalkan dan tetap kami proses.",
    "wa_cancel_not_possible": (
        "Permohonan {reg_no} tidak dapat dibatalkan lagi karena sudah {state}."
    ),
    "wa_document_revoked": (
        "Dokumen permohonan {reg_no} telah dicabut oleh Disdukcapil dan tidak berlaku lagi. "
        "Silakan hubungi kantor kecamatan Anda."
    ),
    "wa_media_unsupported": (
        "Maaf, kami hanya dapat menerima foto (JPG/PNG) atau PDF. Silakan kirim dokumen "
        "dalam bentuk foto atau PDF."
    ),
    "sign_unrecognised": (
        "Layanan TTE BSrE dua kali menjawab dengan alasan yang tidak dikenal SAPA, sehingga "
        "tidak dicoba lagi secara otomatis: {reason}. Periksa bersama admin TTE, lalu minta "
        "tanda tangan lagi."
    ),
    "passphrase_failures": (
        "Passphrase TTE ditolak BSrE {count} kali hari ini. Salah berulang kali dapat mengunci "
        "sertifikat elektronik: pastikan passphrase benar sebelum mencoba lagi."
    ),
    "too_large": "Kiriman terlalu besar. Perkecil berkas (foto atau PDF) lalu kirim lagi.",
    "document_withdrawn": (
        "Pemohon menghapus pesan berkas ini di WhatsApp; berkas tidak ditampilkan."
    ),
    "wa_message_unreadable": (
        "Maaf, pesan jenis ini tidak dapat kami baca. SAPA dapat membaca pesan teks, foto "
        "(JPG/PNG), dan dokumen PDF, serta pilihan tombol yang kami kirim. Ketik BANTUAN untuk "
        "daftar perintah."
    ),
    "wa_media_failed": (
        "Maaf, berkas yang Anda kirim tidak dapat kami ambil. Silakan kirim ulang berkas tersebut."
    ),
    "wa_rejected": "Mohon maaf, permohonan {reg_no} tidak dapat diproses: {reason}",
    "wa_rate_limited": (
        "Terlalu banyak pesan dalam waktu singkat. Pesan Anda tetap kami simpan dan akan "
        "dibaca petugas; balasan otomatis kami hentikan sebentar. Silakan coba lagi sebentar "
        "lagi."
    ),
    # the SLA sweep's messages to a resident the case waits on (reminders) or who never answered
    "wa_reminder_guestbook": (
        "Pengingat: Buku Tamu untuk permohonan {reg_no} belum Anda isi. Silakan isi melalui "
        "tautan Buku Tamu yang sudah kami kirim, atau balas HALO untuk menerima tautannya lagi. "
        "Permohonan yang tidak dilengkapi akan ditutup otomatis."
    ),
    "wa_reminder_correction": (
        "Pengingat: permohonan {reg_no} masih menunggu perbaikan dari Anda:\n{reason}\n"
        "Silakan perbaiki melalui tautan Buku Tamu Anda, atau balas HALO untuk menerima "
        "tautannya lagi. Permohonan yang tidak diperbaiki akan ditutup otomatis."
    ),
    "wa_expired": (
        "Permohonan {reg_no} telah ditutup karena {reason}. Bila Anda masih memerlukan layanan, "
        "silakan kirim HALO untuk memulai permohonan baru."
    ),
    "expired_reason_guestbook": "Buku Tamu tidak diisi dalam {days} hari",
    "expired_reason_correction": "perbaikan tidak dikirim dalam {days} hari",
    # the answer to STATUS (services/estimate.py)
    "wa_status_office": (
        "Permohonan {reg_no}: {state}.\n"
        "Sedang ditangani: {holder}, langkah {number} dari {total} ({kegiatan})."
    ),
    "wa_status_eta": "Perkiraan selesai: {when}.",
    "wa_status_eta_basis_data": (
        "Perkiraan ini dihitung dari lama pelayanan {days} hari terakhir dan hari serta jam "
        "kerja kantor; dapat berubah."
    ),
    "wa_status_eta_basis_sop": (
        "Perkiraan ini dihitung dari waktu baku SOP dan hari serta jam kerja kantor; dapat berubah."
    ),
    "wa_status_resident": "Permohonan {reg_no}: {state}.\nSedang ditangani: Anda (pemohon). {todo}",
    "wa_status_todo_guestbook": (
        "Silakan isi Buku Tamu melalui tautan yang kami kirim; balas HALO untuk menerima "
        "tautannya lagi."
    ),
    "wa_status_todo_correction": (
        "Silakan kirim perbaikan melalui tautan Buku Tamu Anda; balas HALO untuk menerima "
        "tautannya lagi."
    ),
    "wa_status_closed": "Permohonan {reg_no}: {state}.",
    "wa_help": (
        "Layanan WhatsApp Disdukcapil Kabupaten Gowa.\n"
        "Ketik STATUS untuk melihat posisi permohonan, BATAL untuk membatalkan, "
        "DOKUMEN untuk menerima lagi dokumen yang sudah selesai, BANTUAN untuk bantuan ini."
    ),
}

# Day and month names for dates said to people (Monday first, like datetime.weekday()).
DAY_NAMES = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
MONTH_NAMES = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)

STATE_LABELS: dict[str, str] = {
    "greeted": "Menyapa",
    "link_sent": "Menunggu pengisian Buku Tamu",
    "form_submitted": "Buku Tamu terkirim, menunggu pemeriksaan",
    "checked": "Data diperiksa",
    "contacted": "Pemohon dihubungi",
    "forwarded": "Berkas diteruskan ke operator SIAK",
    "entered_in_siak": "Diinput ke SIAK",
    "approved": "Disetujui Kepala Bidang",
    "signed": "Ditandatangani (TTE)",
    "delivered": "Dokumen terkirim ke pemohon",
    "awaiting_correction": "Menunggu perbaikan dari pemohon",
    "returned": "Dikembalikan satu langkah",
    "rejected": "Ditolak",
    "cancelled": "Dibatalkan",
    "expired": "Kedaluwarsa",
}

ACTION_LABELS: dict[str, str] = {
    "claim": "Ambil (klaim)",
    "release": "Lepaskan klaim",
    "send_link": "Kirim tautan Buku Tamu",
    "check": "Data lengkap — selesai diperiksa",
    "contact": "Pemohon sudah dihubungi",
    "forward": "Teruskan ke operator SIAK",
    "enter_siak": "Sudah diinput ke SIAK",
    "approve": "Setujui penerbitan",
    "sign": "Tandatangani (TTE)",
    "request_correction": "Minta perbaikan dari pemohon",
    "return": "Kembalikan satu langkah",
    "reject": "Tolak permohonan",
    "cancel": "Batalkan permohonan",
    "reassign": "Alihkan ke petugas lain",
    "reply": "Kirim pesan ke pemohon",
    "revoke_document": "Cabut dokumen bertanda tangan",
}

# The audit trail as staff read it: every event the code records on a case, by its name
# (tests/unit/test_audit_labels.py finds every name the code can record and checks it is here).
AUDIT_EVENT_LABELS: dict[str, str] = {
    # the SOP's steps
    "greet": "Pemohon menyapa nomor layanan",
    "send_link": "Tautan Buku Tamu dikirim",
    "check": "Data diperiksa: lengkap",
    "contact": "Pemohon dihubungi",
    "forward": "Berkas diteruskan ke operator SIAK",
    "enter_siak": "Diinput ke SIAK, konsep diunggah",
    "approve": "Penerbitan disetujui",
    "sign": "Dokumen ditandatangani (TTE)",
    # the moves around them
    "submit_form": "Buku Tamu dikirim pemohon",
    "request_correction": "Perbaikan diminta dari pemohon",
    "return": "Dikembalikan satu langkah",
    "reject": "Permohonan ditolak",
    "cancel": "Permohonan dibatalkan",
    "expire": "Permohonan kedaluwarsa",
    "deliver": "Dokumen diterima pemohon di WhatsApp",
    "claim": "Diambil (klaim)",
    "release": "Klaim dilepas",
    "reassign": "Dialihkan ke petugas lain",
    "claim_returned": "Klaim dikembalikan ke antrean",
    "reply": "Pesan petugas ke pemohon",
    "complaint_filed": "Aduan pemohon diterima",
    "complaint_replied": "Aduan ditanggapi",
    "complaint_closed": "Aduan ditutup",
    "complaint_late": "Aduan melewati waktu tanggapan",
    "revoke_document": "Dokumen bertanda tangan dicabut",
    # what happened on the way
    "document_uploaded": "Dokumen diunggah pemohon",
    "precheck": "Pra-periksa otomatis",
    "siak_handoff_ready": "Paket serah terima SIAK siap",
    "sign_requested": "Tanda tangan elektronik diminta",
    "sign_delayed": "Tanda tangan elektronik tertunda",
    "sign_failed": "Tanda tangan elektronik gagal",
    "cancel_requested": "Pemohon meminta pembatalan",
    "cancel_declined": "Pemohon tidak jadi membatalkan",
    "media_stored": "Berkas dari WhatsApp disimpan",
    "media_failed": "Berkas dari WhatsApp gagal diambil",
    "media_rejected": "Berkas dari WhatsApp ditolak",
    "document_withdrawn": "Pemohon menghapus berkas di WhatsApp",
    "message_not_sent": "Pesan tidak terkirim",
    "message_delayed": "Pengiriman pesan tertunda",
    "message_failed": "Pesan gagal sampai ke pemohon",
    "message_skipped": "Pesan otomatis tidak dikirim",
    "officer_alerted": "Petugas diberi tahu lewat WhatsApp",
    "sla_breach": "Melewati mutu baku",
    "sla_escalated": "Dilaporkan ke Kepala Bidang (melewati mutu baku)",
    "lead_time_breach": "Melewati target waktu kantor",
    "sla_reminder": "Pengingat dikirim ke pemohon",
    "wa_number_changed": "Nomor WhatsApp pemohon berubah",
    "wa_identity_changed": "Identitas WhatsApp pemohon berubah",
    "data_corrected": "Data pemohon dikoreksi",
    "subject_export": "Data diekspor atas permintaan subjek data",
    "erasure": "Data dihapus atas permintaan subjek data",
    "retention_documents": "Dokumen persyaratan dihapus (jadwal retensi)",
    "retention_personal_data": "Data pribadi dianonimkan (jadwal retensi)",
    "retention_signed": "Dokumen bertanda tangan dihapus (jadwal retensi)",
}

# Reasons SAPA records as codes (a message not sent, say), as the audit trail says them.
REASON_LABELS: dict[str, str] = {
    "outside_24h_window_no_template": "di luar 24 jam sejak pesan terakhir pemohon, tanpa templat",
    "officer_wrote_to_resident": "petugas baru saja menulis kepada pemohon",
    "template_paused": "templat dijeda oleh Meta",
    "template_disabled": "templat dinonaktifkan oleh Meta",
    "template_rejected": "templat ditolak oleh Meta",
    "template_flagged": "templat ditandai oleh Meta",
    "template_pending_deletion": "templat akan dihapus oleh Meta",
    "template_deleted": "templat dihapus oleh Meta",
    "template_limit_exceeded": "batas templat Meta terlampaui",
}

# Who acted, where no officer's name applies.
ACTOR_LABELS: dict[str, str] = {
    "system": "Sistem SAPA",
    "pemohon": "Pemohon",
    "wa-business-app": "Petugas (aplikasi WhatsApp Business)",
    "automatic_message": "SAPA (otomatis)",
    "former_officer": "Petugas",
}

# An outbound message's way to the resident's phone: WhatsApp's statuses; "pending" until
# WhatsApp says it is sent, "not_sent" when it would not take it.
MESSAGE_STATUS_LABELS: dict[str, str] = {
    "pending": "mengirim…",
    "sent": "terkirim",
    "delivered": "diterima",
    "read": "dibaca",
    "failed": "gagal terkirim",
    "not_sent": "tidak terkirim",
}

FIELD_LABELS: dict[str, str] = {
    "name": "Nama lengkap",
    "nik": "NIK",
    "kk": "Nomor KK",
    "birth_date": "Tanggal lahir",
    "desa": "Desa/Kelurahan",
    "address": "Alamat",
    "wa_number": "Nomor WhatsApp",
    "notes": "Catatan",
}

ROLE_LABELS: dict[str, str] = {
    "pemohon": "Pemohon",
    "loket": "Petugas Loket Pelayanan",
    "verifikator": "Petugas Verifikasi Berkas",
    "operator_siak": "Operator SIAK",
    "kabid": "Kepala Bidang",
    "kadis": "Kepala Dinas",
    "admin": "Admin",
    "system": "Sistem",
}


# The staff audit trail on the admin's officers page (domain.staff's events and fields).
STAFF_EVENT_LABELS: dict[str, str] = {
    "officer_added": "Petugas ditambahkan",
    "officer_changed": "Data petugas diubah",
    "officer_deactivated": "Petugas dinonaktifkan",
    "officer_reactivated": "Petugas diaktifkan kembali",
    "claims_returned": "Klaim dikembalikan ke antrean",
}

STAFF_FIELD_LABELS: dict[str, str] = {
    "email": "E-mail",
    "name": "Nama",
    "roles": "Peran",
    "kecamatan": "Kecamatan",
    "wa_number": "Nomor WhatsApp",
    "wa": "Nomor WhatsApp",
    "active": "Status",
}


def text(key: str, **values: object) -> str:
    """The Indonesian text for `key`, with `values` filled in."""
    return ID[key].format(**values)


COMPLAINT_OUTCOME_LABELS: dict[str, str] = {
    "resolved": "ditindaklanjuti dan selesai",
    "unfounded": "tidak terbukti setelah diperiksa",
    "referred": "diteruskan ke instansi yang berwenang",
}

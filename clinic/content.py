"""The demo clinic's copy: treatments, ad campaigns and interface strings, Japanese first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOCALES: tuple[str, ...] = ("ja", "en")
POLICY_LABEL = "2024-04-23"


def policy_text() -> str:
    """The clinic's privacy policy, shipped inside the package (its hash is the policy version)."""
    # Beside this module rather than importlib.resources: under pytest, tests/clinic can shadow
    # the package name as a namespace portion.
    return (Path(__file__).parent / "clinic-privacy-policy.txt").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    label: dict[str, str]
    yen: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Treatment:
    slug: str
    title: dict[str, str]
    summary: dict[str, str]
    body: dict[str, tuple[str, ...]]
    downtime: dict[str, str]
    prices: tuple[Price, ...]

    def text(self, locale: str) -> str:
        """Everything a site search may match, in one locale."""
        return " ".join((self.title[locale], self.summary[locale], *self.body[locale]))


TREATMENTS: tuple[Treatment, ...] = (
    Treatment(
        slug="futae",
        title={"ja": "二重整形(埋没法)", "en": "Double eyelid surgery (buried suture)"},
        summary={
            "ja": "メスを使わず、極細の医療用糸でまぶたを留めて自然な二重を作ります。",
            "en": "A natural double eyelid made with fine medical sutures, without a scalpel.",
        },
        body={
            "ja": (
                "埋没法は、まぶたの裏側から医療用の糸を通して二重のラインを作る施術です。"
                "切開をしないため腫れが少なく、施術時間は約15分です。",
                "カウンセリングでは、ご希望の幅やラインをシミュレーションしながら、"
                "まぶたの厚みや目の形に合った方法を医師がご提案します。",
                "糸が取れた場合の再施術保証(2点留め 1年、4点留め 5年)があります。",
            ),
            "en": (
                "The buried-suture method creates the eyelid crease with medical thread placed "
                "from the inside of the lid. There is no incision, little swelling, and the "
                "procedure takes about 15 minutes.",
                "During counselling the doctor simulates the width and line you would like "
                "and suggests the method that suits the thickness and shape of your eyelids.",
                "If a suture comes loose we redo it free of charge (2-point: 1 year, "
                "4-point: 5 years).",
            ),
        },
        downtime={"ja": "腫れ 2〜3日程度", "en": "Swelling for about 2–3 days"},
        prices=(
            Price(label={"ja": "埋没法 2点留め(両目)", "en": "2-point suture (both eyes)"},
                  yen=29800),
            Price(label={"ja": "埋没法 4点留め(両目)", "en": "4-point suture (both eyes)"},
                  yen=79800),
        ),
    ),
    Treatment(
        slug="hyaluronic",
        title={"ja": "ヒアルロン酸注入", "en": "Hyaluronic acid fillers"},
        summary={
            "ja": "ほうれい線や涙袋、唇、あごに。注射だけでふっくらとした若々しい印象に。",
            "en": "For smile lines, tear troughs, lips and chin: a fuller, younger look "
            "from injections alone.",
        },
        body={
            "ja": (
                "ヒアルロン酸はもともと体内にある保湿成分で、注入によってしわやくぼみを"
                "内側から持ち上げます。",
                "施術は10〜20分で、直後からメイクが可能です。効果は部位や製剤により"
                "半年から1年半ほど続きます。",
                "痛みが心配な方には、麻酔クリームや麻酔入りの製剤をご用意しています。",
            ),
            "en": (
                "Hyaluronic acid is a moisturising substance the body already contains; "
                "injected, it lifts wrinkles and hollows from within.",
                "The treatment takes 10–20 minutes and you can wear make-up straight away. "
                "Results last from six months to a year and a half, depending on the area "
                "and the product.",
                "If you are worried about pain, we offer numbing cream and fillers that "
                "contain an anaesthetic.",
            ),
        },
        downtime={"ja": "ほぼなし(内出血が出る場合があります)",
                  "en": "Almost none (some bruising is possible)"},
        prices=(
            Price(label={"ja": "ヒアルロン酸 1cc", "en": "Hyaluronic acid, 1 cc"}, yen=39800),
            Price(label={"ja": "涙袋 0.5cc", "en": "Tear trough, 0.5 cc"}, yen=24800),
        ),
    ),
    Treatment(
        slug="datsumo",
        title={"ja": "医療脱毛", "en": "Medical laser hair removal"},
        summary={
            "ja": "医療用レーザーで、少ない回数でしっかり効果。全身・顔・VIOに対応。",
            "en": "Medical-grade lasers for lasting results in fewer sessions: "
            "full body, face and bikini line.",
        },
        body={
            "ja": (
                "医療脱毛は、毛根の発毛組織にレーザーを照射して、毛が生えにくい状態を"
                "つくる施術です。エステの光脱毛より少ない回数で効果を実感できます。",
                "冷却機能付きの機器を使用し、痛みを抑えながら照射します。",
                "5回コースで多くの方が自己処理の負担が減ったと実感されています。",
            ),
            "en": (
                "Medical laser hair removal targets the tissue at the root of the hair so that "
                "it grows back far less. You see results in fewer sessions than with "
                "salon light treatments.",
                "Our lasers have built-in cooling to keep discomfort low.",
                "After a five-session course most patients find they rarely need to shave.",
            ),
        },
        downtime={"ja": "なし(赤みが数時間出ることがあります)",
                  "en": "None (redness for a few hours is possible)"},
        prices=(
            Price(label={"ja": "全身脱毛 5回", "en": "Full body, 5 sessions"}, yen=198000),
            Price(label={"ja": "顔脱毛 5回", "en": "Face, 5 sessions"}, yen=49800),
            Price(label={"ja": "VIO脱毛 5回", "en": "Bikini line, 5 sessions"}, yen=69800),
        ),
    ),
)

TREATMENTS_BY_SLUG: dict[str, Treatment] = {t.slug: t for t in TREATMENTS}


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaign:
    slug: str
    treatment: str
    headline: dict[str, str]
    offer: dict[str, str]


CAMPAIGNS: dict[str, Campaign] = {
    c.slug: c
    for c in (
        Campaign(
            slug="futae-spring",
            treatment="futae",
            headline={"ja": "春の二重キャンペーン", "en": "Spring double-eyelid campaign"},
            offer={"ja": "埋没法 2点留め 初回限定 19,800円", "en": "2-point suture, first visit "
                   "only: ¥19,800"},
        ),
        Campaign(
            slug="datsumo-first",
            treatment="datsumo",
            headline={"ja": "はじめての医療脱毛", "en": "Your first medical hair removal"},
            offer={"ja": "顔脱毛 お試し1回 4,980円", "en": "Face, one trial session: ¥4,980"},
        ),
    )
}

#: Interface strings; templates read them as ``t.key``.
STRINGS: dict[str, dict[str, str]] = {
    "ja": {
        "clinic": "アラジン美容クリニック",
        "tagline": "池袋の美容外科・美容皮膚科",
        "home": "ホーム",
        "treatments": "施術メニュー",
        "search": "検索",
        "search_placeholder": "施術を検索(例:二重、脱毛)",
        "reserve": "無料カウンセリング予約",
        "privacy": "プライバシーポリシー",
        # The banner sends visitors to 「プライバシー設定」: the link must carry that name.
        "cookie_settings": "プライバシー設定(クッキー設定 / Cookie settings)",
        "external": "外部送信について",
        "my_data": "あなたのデータをダウンロード",
        "delete_data": "あなたのデータを削除",
        "request_form": "開示・削除などのご請求",
        "rights_note": "アクセス解析に同意した場合、このブラウザについて記録されたデータを"
        "いつでもダウンロード・削除できます(プライバシーポリシー第5条・第6条)。",
        "other_lang": "English",
        "hero_title": "あなたらしい美しさを、安心の医療で。",
        "hero_text": "経験豊富な医師が、カウンセリングから施術後のケアまで丁寧に対応します。"
        "無理な勧誘は一切ありません。",
        "details": "詳しく見る",
        "price": "料金(税込)",
        "downtime": "ダウンタイム",
        "results_for": "「{q}」の検索結果",
        "no_results": "該当する施術が見つかりませんでした。",
        "empty_query": "キーワードを入力してください。",
        "name": "お名前",
        "phone": "電話番号",
        "email": "メールアドレス",
        "date": "希望日",
        "treatment": "ご希望の施術",
        "choose": "選択してください",
        "submit": "予約を申し込む",
        "form_note": "ご入力いただいた個人情報は予約のご連絡にのみ使用し、"
        "アクセス解析には一切送信しません。",
        "errors_title": "入力内容を確認してください",
        "thanks_title": "ご予約を受け付けました",
        "thanks_text": "担当者より2営業日以内にご連絡いたします。",
        "back_home": "ホームへ戻る",
        "lp_cta": "今すぐカウンセリングを予約",
        "not_found": "ページが見つかりません",
        "policy_intro": "当院のプライバシーポリシー(原文)です。"
        "Cookie や外部送信の設定はいつでも変更できます。",
        "address": "〒170-0013 東京都豊島区東池袋1-30-6 セイコーサンシャインビルXII 6F"
        " / TEL 03-5810-2238(10:00〜17:00)",
        "demo_note": "これはデモサイトです。実在の医療機関ではありません。",
        "contact": "お問い合わせ",
        "line": "LINEで相談",
        "web_booking": "Web予約(外部サイト)",
        "price_list": "料金表(PDF)",
        "contact_note": "電話番号・LINE・予約サイトはデモ用で、どこにもつながりません。",
    },
    "en": {
        "clinic": "Aladdin Cosmetic Clinic",
        "tagline": "Cosmetic surgery and dermatology in Ikebukuro",
        "home": "Home",
        "treatments": "Treatments",
        "search": "Search",
        "search_placeholder": "Search treatments (e.g. eyelid, laser)",
        "reserve": "Book a free consultation",
        "privacy": "Privacy policy",
        "cookie_settings": "Privacy settings (Cookie settings / クッキー設定)",
        "external": "External transmission",
        "my_data": "Download your data",
        "delete_data": "Delete your data",
        "request_form": "Disclosure, deletion and other requests",
        "rights_note": "If you consented to analytics, you can download or delete what was "
        "recorded about this browser at any time (privacy policy Articles 5 and 6).",
        "other_lang": "日本語",
        "hero_title": "Your own kind of beauty, with medicine you can trust.",
        "hero_text": "Experienced doctors take care of you from the first consultation to "
        "aftercare. No pressure selling, ever.",
        "details": "Details",
        "price": "Prices (tax included)",
        "downtime": "Downtime",
        "results_for": "Results for “{q}”",
        "no_results": "No treatment matched your search.",
        "empty_query": "Please enter a keyword.",
        "name": "Name",
        "phone": "Phone",
        "email": "E-mail",
        "date": "Preferred date",
        "treatment": "Treatment",
        "choose": "Please choose",
        "submit": "Request a consultation",
        "form_note": "The personal details you enter are used only to contact you about "
        "your appointment and are never sent to analytics.",
        "errors_title": "Please check your entries",
        "thanks_title": "Thank you, we received your request",
        "thanks_text": "We will contact you within two business days.",
        "back_home": "Back to home",
        "lp_cta": "Book a consultation now",
        "not_found": "Page not found",
        "policy_intro": "The clinic's privacy policy. You can change your cookie and "
        "external-transmission choices at any time.",
        "address": "6F Seiko Sunshine Building XII, 1-30-6 Higashi-Ikebukuro, Toshima-ku, "
        "Tokyo 170-0013 / TEL 03-5810-2238 (10:00–17:00)",
        "demo_note": "This is a demo site, not a real clinic.",
        "contact": "Contact us",
        "line": "Ask us on LINE",
        "web_booking": "Book online (external site)",
        "price_list": "Price list (PDF)",
        "contact_note": "The phone number, LINE account and booking site are for the demo "
        "and reach nobody.",
    },
}

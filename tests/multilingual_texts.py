"""A small multilingual library: a few paragraphs per language, written like the pages of central banks and
statistics offices that the crawler fetches (id, language, title, url, text)."""

DOCS = [
 ("ja-boj", "ja", "日本銀行の金融政策", "https://www.boj.or.jp/mopo/a.htm",
  "日本銀行は、物価の安定を図ることを通じて国民経済の健全な発展に資することを理念として金融政策を運営しています。"
  "政策委員会は、消費者物価の前年比上昇率２％の「物価安定の目標」を掲げています。"
  "短期金利については、日本銀行当座預金のうち政策金利残高にマイナス０．１％のマイナス金利を適用します。"),
 ("ja-stat", "ja", "人口推計", "https://www.stat.go.jp/data/jinsui/b.html",
  "総務省統計局の人口推計によると、日本の総人口は前年に比べて減少しました。"
  "高齢化率は過去最高となり、六十五歳以上の人口が総人口に占める割合は二十九パーセントを超えました。"),
 ("ko-bok", "ko", "한국은행 기준금리", "https://www.bok.or.kr/portal/a.do",
  "한국은행 금융통화위원회는 다음 통화정책방향 결정시까지 한국은행 기준금리를 현 수준에서 유지하여 통화정책을 운용하기로 하였다. "
  "소비자물가 상승률은 석유류 가격 하락으로 낮아졌으며, 근원인플레이션율도 둔화 흐름을 이어갔다."),
 ("ko-kostat", "ko", "출생 통계", "https://kostat.go.kr/b.do",
  "통계청에 따르면 지난해 출생아 수는 전년보다 감소하였고 합계출산율은 역대 최저를 기록하였다. "
  "사망자 수는 증가하여 인구 자연감소가 계속되었다."),
 ("th-bot", "th", "นโยบายการเงิน", "https://www.bot.or.th/th/a.html",
  "คณะกรรมการนโยบายการเงินมีมติเอกฉันท์ให้คงอัตราดอกเบี้ยนโยบายไว้ที่ร้อยละ 2.50 ต่อปี "
  "เศรษฐกิจไทยมีแนวโน้มขยายตัวต่อเนื่องจากการท่องเที่ยวและการบริโภคภาคเอกชน "
  "อัตราเงินเฟ้อทั่วไปอยู่ในระดับต่ำกว่ากรอบเป้าหมาย"),
 ("th-nso", "th", "สำมะโนประชากร", "https://www.nso.go.th/b.html",
  "สำนักงานสถิติแห่งชาติได้ดำเนินการสำรวจภาวะการทำงานของประชากรทั่วประเทศ "
  "ผลการสำรวจพบว่าอัตราการว่างงานลดลงเมื่อเทียบกับไตรมาสก่อน"),
 ("ar-sama", "ar", "السياسة النقدية", "https://www.sama.gov.sa/ar-sa/a.aspx",
  "قرر البنك المركزي السعودي رفع معدل اتفاقية إعادة الشراء بمقدار خمسٍ وعشرين نقطة أساس، "
  "وذلك انسجامًا مع التوجهات الدولية للسياسات النقدية وبما يُعزِّز الاستقرار النقدي والمالي في المملكة."),
 ("ar-stats", "ar", "معدل البطالة", "https://www.stats.gov.sa/ar/b",
  "أظهرت نتائج مسح القوى العاملة انخفاض معدل البطالة بين السعوديين إلى أدنى مستوى تاريخي\u200f له، "
  "كما ارتفعت نسبة مشاركة المرأة في سوق العمل."),
 ("he-boi", "he", "ריבית בנק ישראל", "https://www.boi.org.il/a",
  "הוועדה המוניטרית של בנק ישראל החליטה להותיר את הריבית ללא שינוי ברמה של \u200e4.5\u200e אחוזים\u200f. "
  "שיעור האינפלציה בשנים עשר החודשים האחרונים ירד אך עדיין נמצא מעל הגבול העליון של יעד יציבות המחירים."),
 ("ru-cbr", "ru", "Ключевая ставка", "https://www.cbr.ru/press/a/",
  "Совет директоров Банка России принял решение сохранить ключевую ставку на уровне 16,00% годовых. "
  "Инфляционное давление остаётся высоким, рост внутреннего спроса продолжает опережать "
  "возможности расширения производства."),
 ("ru-rosstat", "ru", "Численность населения", "https://rosstat.gov.ru/b",
  "По оценке Росстата, численность постоянного населения Российской Федерации на 1 января сократилась. "
  "Естественная убыль населения частично компенсировалась миграционным приростом."),
 ("uk-nbu", "uk", "Облікова ставка", "https://bank.gov.ua/ua/a",
  "Правління Національного банку України ухвалило рішення знизити облікову ставку. "
  "Інфляція сповільнюється швидше, ніж очікувалося, завдяки врожаю та стабільній ситуації на валютному ринку."),
 ("el-bog", "el", "Τράπεζα της Ελλάδος", "https://www.bankofgreece.gr/a",
  "Η Τράπεζα της Ελλάδος εκτιμά ότι ο ρυθμός ανάπτυξης της ελληνικής οικονομίας θα διαμορφωθεί στο 2,3%. "
  "Ο πληθωρισμός αναμένεται να αποκλιμακωθεί σταδιακά, ενώ η ανεργία συνεχίζει να μειώνεται."),
 ("de-buba", "de", "Geldpolitik der Bundesbank", "https://www.bundesbank.de/de/a",
  "Die Deutsche Bundesbank ist die Zentralbank der Bundesrepublik Deutschland. "
  "Zusammen mit der Europäischen Zentralbank ist sie für die Geldpolitik im Euroraum verantwortlich. "
  "Die Bargeldversorgung und der unbare Zahlungsverkehr gehören zu ihren Kernaufgaben."),
 ("de-destatis", "de", "Verbraucherpreisindex", "https://www.destatis.de/DE/b",
  "Die Inflationsrate in Deutschland, gemessen als Veränderung des Verbraucherpreisindex zum Vorjahresmonat, "
  "lag im Oktober bei 2,0 Prozent. Die Preise für Nahrungsmittel erhöhten sich überdurchschnittlich."),
 ("fr-bdf", "fr", "Banque de France", "https://www.banque-france.fr/fr/a",
  "La Banque de France contribue à la définition de la politique monétaire de la zone euro. "
  "Elle veille à la stabilité financière et assure le bon fonctionnement des systèmes de paiement."),
 ("fr-insee", "fr", "Taux de chômage", "https://www.insee.fr/fr/b",
  "Au troisième trimestre, le taux de chômage au sens du Bureau international du travail est quasi stable. "
  "Il s'établit à 7,4 % de la population active en France, hors Mayotte."),
 ("es-bde", "es", "Banco de España", "https://www.bde.es/a",
  "El Banco de España prevé que la economía española crezca este año gracias al dinamismo del consumo privado "
  "y de las exportaciones de servicios turísticos. La inflación subyacente continuará moderándose."),
 ("hi-rbi", "hi", "मौद्रिक नीति", "https://www.rbi.org.in/hindi/a",
  "भारतीय रिज़र्व बैंक की मौद्रिक नीति समिति ने नीतिगत रेपो दर को अपरिवर्तित रखने का निर्णय लिया। "
  "समिति ने मुद्रास्फीति को लक्ष्य के अनुरूप लाने पर ध्यान केंद्रित करना जारी रखा है।"),
 ("vi-sbv", "vi", "Ngân hàng Nhà nước", "https://www.sbv.gov.vn/a",
  "Ngân hàng Nhà nước Việt Nam quyết định giữ nguyên các mức lãi suất điều hành nhằm hỗ trợ phục hồi kinh tế. "
  "Lạm phát cơ bản được kiểm soát dưới mức mục tiêu Quốc hội đề ra."),
 ("tr-tcmb", "tr", "Para Politikası Kurulu", "https://www.tcmb.gov.tr/a",
  "Para Politikası Kurulu, politika faizi olan bir hafta vadeli repo ihale faiz oranının yüzde 50 seviyesinde "
  "sabit tutulmasına karar vermiştir. İstanbul'daki tüketici fiyatları ılımlı bir seyir izlemiştir."),
 ("fa-cbi", "fa", "بانک مرکزی", "https://www.cbi.ir/a",
  "بانک مرکزی جمهوری اسلامی ایران نرخ تورم نقطه به نقطه را اعلام کرد. "
  "بر اساس این گزارش، شاخص قیمت مصرف\u200cکننده در ماه گذشته کاهش یافت."),
 ("pl-nbp", "pl", "Stopy procentowe", "https://nbp.pl/a",
  "Rada Polityki Pieniężnej postanowiła pozostawić stopy procentowe NBP na niezmienionym poziomie. "
  "Dynamika cen konsumpcyjnych obniżyła się, jednak inflacja bazowa pozostaje podwyższona."),
]

"""Common given names and surnames, lower-case: evidence that a column of capitalised words
holds people rather than products or places (`govern.classify`). Hand-written, a few hundred
of each across the languages our users' customers most often have; recall, not a census.
Also the small words inside names (particles) and the words that make a name a company's.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.lower().split())


FIRST_NAMES = _words(
    """
    james john robert michael william david richard joseph thomas charles christopher daniel
    matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy
    ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin
    scott brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry
    tyler aaron jose adam nathan henry douglas zachary peter kyle ethan walter noah jeremy
    christian keith roger terry gerald harold sean austin carl arthur lawrence dylan jesse
    jordan bryan billy joe bruce gabriel logan albert willie alan juan wayne elijah randy roy
    vincent ralph eugene russell bobby mason philip louis liam oliver lucas harry charlie
    oscar leo archie freddie alfie theo max finn luke owen connor callum declan
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty
    margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah
    stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma
    nicole helen samantha katherine christine debra rachel carolyn janet catherine maria
    heather diane ruth julie olivia joyce virginia victoria kelly lauren christina joan
    evelyn judith megan andrea cheryl hannah jacqueline martha gloria teresa ann sara madison
    frances kathryn janice jean abigail alice judy sophia grace denise amber doris marilyn
    danielle beverly isabella theresa diana natalie brittany charlotte marie kayla alexis
    lori ava mia amelia isla poppy ella chloe lily sophie ruby jessica holly freya evie
    lukas jonas leon felix paul elias maximilian finn ben niklas tim jan moritz lena lea
    laura hanna mia anna lina emilia johanna katharina julia sabine ursula petra monika
    jean pierre michel philippe alain nicolas louis hugo jules gabriel camille manon chloe
    lea ines sarah julie marie nathalie isabelle sylvie
    giuseppe giovanni antonio mario luigi francesco alessandro marco matteo lorenzo andrea
    giulia francesca chiara sofia aurora martina alessia valentina elena federica
    jose antonio manuel francisco javier pablo alejandro carlos miguel diego mateo lucia
    carmen dolores pilar isabel sofia valeria camila ana
    daan sem bram lars jesse thijs ruben sanne anouk fleur lotte emma eva julia sven erik
    lars anders johan nils olaf bjorn astrid ingrid karin sigrid freja elsa
    piotr krzysztof tomasz pawel marcin anna katarzyna agnieszka magdalena
    ivan dmitri sergei alexei nikolai vladimir olga tatiana natalia svetlana irina
    mohammed muhammad ahmed ali omar hassan yusuf ibrahim fatima aisha leila layla zainab
    amir reza mehdi sara maryam
    aarav arjun rohan rahul vikram amit raj sanjay priya ananya pooja neha divya kavya
    wei jing li ming hui chen yan lei xin mei hiroshi takashi kenji haruto yuki sakura yui
    hana minh linh anh thanh huong min seo ji jun hyun
    kwame kofi chidi emeka oluwaseun tunde amara ngozi abena
    siobhan niamh aoife ciaran sean seamus
    """
)

SURNAMES = _words(
    """
    smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez
    gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white
    harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres
    nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts
    gomez phillips evans turner diaz parker cruz edwards collins reyes stewart morris morales
    murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos
    kim cox ward richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes
    price alvarez castillo sanders patel myers long ross foster jimenez powell jenkins perry
    russell sullivan bell coleman butler henderson barnes gonzales fisher vasquez simmons
    romero jordan patterson alexander hamilton graham reynolds griffin wallace moreno west
    cole hayes bryant herrera gibson ellis tran medina aguilar stevens murray ford castro
    marshall owens harrison fernandez mcdonald woods washington kennedy wells vargas henry
    chen freeman webb tucker guzman burns crawford olson simpson porter hunter gordon mendez
    silva shaw snyder mason dixon munoz hunt hicks holmes palmer wagner black robertson boyd
    rose stone salazar fox warren mills meyer rice schmidt garza daniels ferguson nichols
    stephens soto weaver ryan gardner payne grant dunn kelley spencer hawkins arnold pierce
    hansen peters santos hart bradley knight elliott cunningham duncan armstrong hudson
    carroll lane riley andrews ray berry perkins hoffman johnston matthews pena richards
    willis carpenter lawrence sandoval
    muller mueller schneider fischer weber becker schulz hoffmann koch richter klein wolf
    schroder neumann schwarz zimmermann braun kruger hofmann hartmann lange werner krause
    lehmann kohler maier huber
    martin bernard dubois thomas robert richard petit durand leroy moreau simon laurent
    lefebvre michel david bertrand roux vincent fournier morel girard andre mercier dupont
    lambert bonnet francois martinez
    rossi russo ferrari esposito bianchi romano colombo ricci marino greco bruno gallo conti
    de luca costa giordano mancini rizzo lombardi moretti
    garcia fernandez gonzalez rodriguez lopez martinez sanchez perez martin gomez ruiz
    hernandez jimenez diaz moreno alvarez munoz romero navarro torres
    de jong jansen de vries van den berg van dijk bakker janssen visser smit meijer mulder
    bos vos peters hendriks dekker
    andersson johansson karlsson nilsson eriksson larsson olsson persson svensson hansen
    johansen olsen nielsen jensen pedersen
    nowak kowalski wisniewski wojcik kowalczyk kaminski lewandowski zielinski szymanski
    ivanov smirnov kuznetsov popov petrov sokolov volkov novak horvat kovac
    sharma singh kumar gupta patel shah mehta iyer reddy rao nair das khan ali ahmed hussain
    rahman malik chaudhry
    wang li zhang liu yang huang zhao wu zhou xu sun ma zhu hu guo he lin luo
    tanaka suzuki takahashi watanabe ito yamamoto nakamura kobayashi sato kato
    nguyen tran le pham hoang phan vu dang bui do ho ngo
    kim lee park choi jung kang cho yoon jang lim
    okafor okeke adeyemi adebayo mensah boateng owusu mwangi
    o'brien o'connor o'neill byrne walsh doyle kavanagh
    yilmaz kaya demir sahin celik papadopoulos oliveira pereira ferreira alves
    """
)

# lower-case words inside a person's name: "van der Berg", "da Silva", "bin Rashid"
PARTICLES = frozenset(
    ("van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "le", "la", "bin",
     "ibn", "al", "el")
)  # fmt: skip
# words that make "Smith Ltd" a company rather than a person (compared case-folded)
COMPANY_WORDS = frozenset(
    ("inc", "ltd", "llc", "llp", "plc", "gmbh", "ag", "sa", "sas", "srl", "bv", "nv", "co",
     "corp", "corporation", "company", "group", "holdings", "industries", "partners", "sons",
     "bros", "associates", "international", "limited", "foundation", "bank")
)  # fmt: skip
